from nameko_like.web.handlers import http
from nameko_like.web.websocket import WebSocketHubProvider, rpc


class ChatService:
    name = "chat"

    hub = WebSocketHubProvider()

    # Websocket clients (connected to /ws) call these by name; the caller's
    # socket id comes first, the frame's "data" as keyword arguments.
    @rpc
    def join(self, socket_id, room):
        self.hub.subscribe(socket_id, room)
        return f"joined {room}"

    @rpc
    def say(self, socket_id, room, text):
        self.hub.broadcast(room, "message", {"from": socket_id, "text": text})

    # Any worker can push to websocket clients, an HTTP one for instance.
    @http("POST", "/rooms/<room>/announce")
    def announce(self, request, room):
        self.hub.broadcast(room, "announcement", request.get_data(as_text=True))
        return 202, ""
