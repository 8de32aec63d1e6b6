"""A stand-in OpenVPN Access Server for import tests: its REST profile download.

Speaks what the Access Server documents for /rest/GetUserlogin and /rest/GetAutologin
(HTTP Basic credentials, XML <Error> bodies with an error status, CRV1 challenges
answered as "CRV1::<state>::<response>" in the password), plus a few plain pages for
URL imports. https only, with the certificate and key given. Prints "ready <port>".

argv: cert key profile_dir
profile_dir holds userlogin.ovpn and autologin.ovpn.
"""

import base64
import http.server
import os
import ssl
import sys

CERT, KEY, DIR = sys.argv[1], sys.argv[2], sys.argv[3]

# user -> (password, may download the autologin profile, needs a second factor)
USERS = {
    "ann": ("correct horse", False, False),
    "auto": ("battery staple", True, False),
    "mfa": ("second factor", False, True),
    "newbie": ("not enrolled", False, False),
}
STATE_ID = "cr-state-42"
OTP = "123456"


def xml_error(kind, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Type>{kind}</Type>\n  <Synopsis>REST method failed</Synopsis>\n"
        f"  <Message>{message}</Message>\n</Error>\n"
    ).encode()


def read(name):
    with open(os.path.join(DIR, name), "rb") as f:
        return f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("request " + (fmt % args) + "\n")
        sys.stderr.flush()

    def send(self, status, ctype, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def credentials(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except Exception:
            return None
        return user, pw

    def rest(self, autologin):
        creds = self.credentials()
        denied = xml_error(
            "Authorization Required",
            "AUTH_FAILED: Server Agent XML method requires authentication (9007)",
        )
        if creds is None or creds[0] not in USERS:
            return self.send(401, "text/xml", denied)
        user, pw = creds
        password, may_autologin, mfa = USERS[user]
        if mfa:
            if pw == f"CRV1::{STATE_ID}::{OTP}":
                pass
            elif pw == password:
                b64 = base64.b64encode(user.encode()).decode()
                challenge = f"CRV1:R,E:{STATE_ID}:{b64}:Enter the code from your authenticator app (9007)"
                return self.send(401, "text/xml", xml_error("Authorization Required", challenge))
            else:
                return self.send(401, "text/xml", denied)
        elif pw != password:
            return self.send(401, "text/xml", denied)
        if user == "newbie":
            return self.send(
                403,
                "text/xml",
                xml_error(
                    "Access denied",
                    "You must enroll this user in Authenticator first before you are allowed to retrieve a connection profile. (9008)",
                ),
            )
        if autologin and not may_autologin:
            return self.send(
                500,
                "text/xml",
                xml_error(
                    "Internal Server Error",
                    f"NEED_AUTOLOGIN: User '{user}' lacks autologin privilege (9000)",
                ),
            )
        body = read("autologin.ovpn" if autologin else "userlogin.ovpn")
        # The Access Server sends profiles as text/plain.
        self.send(200, "text/plain", body)

    def do_GET(self):
        path, _, _query = self.path.partition("?")
        if path == "/rest/GetUserlogin":
            return self.rest(False)
        if path == "/rest/GetAutologin":
            return self.rest(True)
        if path == "/profiles/work.ovpn":
            return self.send(200, "application/x-openvpn-profile", read("userlogin.ovpn"))
        if path == "/profiles/refs.ovpn":
            # A profile that names its files instead of holding them inline.
            body = b"client\ndev tun\nremote vpn.example.com 1194 udp\nca ca.crt\ncert client.crt\nkey client.key\n"
            return self.send(200, "application/x-openvpn-profile", body)
        if path == "/big.ovpn":
            # Larger than any profile (the client's limit is 1 MiB).
            return self.send(200, "text/plain", b"client\n" + b"# padding\n" * 120000)
        if path == "/moved":
            return self.send(302, "text/plain", b"", [("Location", "/profiles/work.ovpn")])
        if path == "/login":
            return self.send(
                200, "text/html; charset=utf-8", b"<!DOCTYPE html><html><body>Sign in</body></html>"
            )
        if path == "/notes.txt":
            return self.send(200, "text/plain", b"Welcome to the VPN.\nAsk IT for a profile.\n")
        self.send(404, "text/plain", b"not found")


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(f"ready {server.server_address[1]}", flush=True)
server.serve_forever()
