"""Where entrypoints call validation: one small call at each place arguments are bound.

``prepare(entrypoint)`` runs in the entrypoint's ``setup()``: if the method
is opted in (see :mod:`~nameko_like.contracts.optin`) and annotated, it
builds the method's :class:`~nameko_like.contracts.signature.Contract`
(pydantic is imported only then) and keeps it on the entrypoint, so that a
type pydantic cannot handle stops the container at start-up with a clear
error. On each request :func:`contract_of` is one attribute read: None for
everything not validated, which then runs exactly as before.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from nameko_like.contracts.errors import ValidationError
from nameko_like.contracts.optin import is_opted_in
from nameko_like.exceptions import ConfigurationError

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from nameko_like.contracts.signature import Contract
    from nameko_like.extensions import Entrypoint

_log = logging.getLogger(__name__)

#: Attribute of a bound entrypoint holding its contract (None: not validated).
CONTRACT_ATTR = "_nameko_like_contract"


def _build(entrypoint: Entrypoint) -> Contract:
    try:
        from nameko_like.contracts.signature import method_contract
    except ImportError as exc:
        raise ConfigurationError(
            f"validating {entrypoint.container.service_name}.{entrypoint.method_name} needs "
            f"pydantic ({exc}): pip install 'nameko_like[contracts]'") from None
    service_cls = entrypoint.container.service_cls
    url = getattr(entrypoint, "url", None)
    if isinstance(url, str):
        from nameko_like.contracts.routes import url_arguments

        return method_contract(service_cls, entrypoint.method_name, skip=1,
                               path_names=url_arguments(url))
    return method_contract(service_cls, entrypoint.method_name)


def prepare(entrypoint: Entrypoint) -> None:
    """Build and keep ``entrypoint``'s contract if its method is validated."""
    contract = None
    container = entrypoint.container
    if is_opted_in(container.service_cls, entrypoint.method_name, container.config):
        built = _build(entrypoint)
        if built.annotated or built.result is not None:
            contract = built
            _log.debug("%s validates its payloads", built.where)
    setattr(entrypoint, CONTRACT_ATTR, contract)


def contract_of(entrypoint: Entrypoint) -> Contract | None:
    """``entrypoint``'s contract, or None when it is not validated."""
    contract: Contract | None = getattr(entrypoint, CONTRACT_ATTR, None)
    return contract


def http_arguments(contract: Contract, request: Request, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """An HTTP entrypoint's ``(args, kwargs)`` with URL arguments and JSON body validated."""
    kwargs = dict(kwargs)
    if contract.body_name is not None:
        data = request.get_data()
        body_parameter = contract.signature.parameters[contract.body_name]
        if data or body_parameter.default is body_parameter.empty:
            kwargs[contract.body_name] = contract.validate_body(data)
    # the request stays first, outside the contract
    rest, kwargs = contract.validate_arguments(args[1:], kwargs)
    return (*args[:1], *rest), kwargs


def http_result(contract: Contract, result: Any) -> Any:
    """What an HTTP method returned, serialized by its annotated type.

    Strings, bytes, ``(status, ...)`` tuples and responses pass unchanged;
    other annotated results become a JSON response.
    """
    if contract.result is None:
        return result
    from werkzeug.wrappers import Response

    return Response(json.dumps(contract.dump_result(result)), mimetype="application/json")


__all__ = ["ValidationError", "contract_of", "http_arguments", "http_result", "prepare"]
