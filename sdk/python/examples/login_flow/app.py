"""login_flow: log in with a secret password, then call the API with the
token and session cookie it hands out, and prove the API answers."""

from vantage_check import TARGET, Check, Key, Outcome, export, http, secrets


class LoginFlow(Check):
    name = "login-flow-py"
    version = "0.1.0"
    description = "POST credentials to the login endpoint, then GET the API with the token and cookie."
    outbound = [TARGET]
    secrets = ["password"]
    config = [
        Key("username", "The user to log in as.", required=True),
        Key("login_path", "Path of the login endpoint.", default="/login"),
        Key("api_path", "Path of the API call made once logged in.", default="/api/me"),
        Key("expect.user", "The user name the API must report.", default="monitor"),
    ]

    def run(self, ctx):
        base = ctx.require_targets("give this check the application's base URL")[0].rstrip("/")
        out = Outcome()
        login = http.post(base + ctx.get("login_path"),
                          json={"username": ctx.require("username"), "password": secrets.get("password")})
        out.expect(login).status_is(200)
        out.measure("login_ms", login.timings.total_ms, "ms")
        if login.status != 200:
            return out.set_summary(f"login refused: {login.status}")
        # The API's contract: a token in the JSON body, a session cookie.
        token = login.json()["token"]
        cookie = (login.header("set-cookie") or "").split(";")[0]
        me = http.get(base + ctx.get("api_path"),
                      headers={"authorization": f"Bearer {token}", "cookie": cookie})
        out.expect(me).status_is(200).json_pointer_eq("/user/name", ctx.get("expect.user"))
        out.measure("api_ms", me.timings.total_ms, "ms")
        return out.headline(f"logged in and called the API in {login.elapsed + me.elapsed:.3f} s")


WitWorld = export(LoginFlow)
