"""A real SMTP server (aiosmtpd) for the portal's email tests.

Listens on 127.0.0.1 on a free port, prints `listening PORT`, then one JSON line per message
received: {"from", "to", "subject", "body"}. Stops when its stdin closes (the test ended).
"""
import email
import email.policy
import json
import socket
import sys

from aiosmtpd.controller import Controller


class Print:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "body": body.get_content() if body else "",
        }), flush=True)
        return "250 OK"


# A free port (aiosmtpd checks its own readiness by connecting, so it needs a real one).
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(Print(), hostname="127.0.0.1", port=port)
controller.start()
print(f"listening {port}", flush=True)
sys.stdin.read()
controller.stop()
