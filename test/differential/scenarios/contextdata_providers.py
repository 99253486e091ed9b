"""nameko.contextdata and nameko.dependency_providers, through real RPC calls."""

from _side import config, module, outcome, run_main

contextdata = module("contextdata")
dependency_providers = module("dependency_providers")
rpc = module("rpc")
runners = module("runners")
standalone_rpc = module("standalone.rpc")


class Inner:
    name = "inner"
    language = contextdata.Language()
    user_id = contextdata.UserId()
    auth_token = contextdata.AuthToken()
    user_agent = contextdata.UserAgent()
    config = dependency_providers.Config()

    @rpc.rpc
    def whoami(self):
        return {"language": self.language, "user_id": self.user_id,
                "auth_token": self.auth_token, "user_agent": self.user_agent}

    @rpc.rpc
    def settings(self):
        return {"GREETING": self.config.get("GREETING"),
                "is_dict": isinstance(self.config, dict),
                "has_amqp_uri": "AMQP_URI" in self.config}


class Outer:
    name = "outer"
    inner = rpc.RpcProxy("inner")

    @rpc.rpc
    def relay(self):
        return self.inner.whoami()


def main():
    runner = runners.ServiceRunner(config(GREETING="hej"))
    runner.add_service(Inner)
    runner.add_service(Outer)
    runner.start()
    context = {"language": "fr", "user_id": 7, "auth_token": "tok",
               "user_agent": "agent/1", "unrelated": "x"}
    try:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10,
                                            context_data=context) as cluster:
            direct = outcome(cluster.inner.whoami)
            relayed = outcome(cluster.outer.relay)
            settings = outcome(cluster.inner.settings)
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            without = outcome(cluster.inner.whoami)
    finally:
        runner.stop()
    keys = {name: getattr(cls, "context_key", None) for name, cls in (
        ("Language", contextdata.Language), ("UserId", contextdata.UserId),
        ("AuthToken", contextdata.AuthToken), ("UserAgent", contextdata.UserAgent))}
    return {"direct": direct, "relayed": relayed, "without_context": without,
            "settings": settings, "context_keys": keys}


run_main(main)
