// login_flow: log in with a secret password, then call the API with the
// token and session cookie it hands out, and prove the API answers.
import { Check, Key, Outcome, TARGET, exportCheck, http, secrets } from './vantage-check/index.js';

class LoginFlow extends Check {
  static name_ = 'login-flow-js';
  static version = '0.1.0';
  static description = 'POST credentials to the login endpoint, then GET the API with the token and cookie.';
  static outbound = [TARGET];
  static secrets = ['password'];
  static config = [
    new Key('username', 'The user to log in as.', { required: true }),
    new Key('login_path', 'Path of the login endpoint.', { default: '/login' }),
    new Key('api_path', 'Path of the API call made once logged in.', { default: '/api/me' }),
    new Key('expect.user', 'The user name the API must report.', { default: 'monitor' }),
  ];

  run(ctx) {
    const base = ctx.requireTargets("give this check the application's base URL")[0].replace(/\/$/, '');
    const out = new Outcome();
    const login = http.post(base + ctx.get('login_path'), {
      json: { username: ctx.require('username'), password: secrets.get('password') },
    });
    out.expect(login).statusIs(200);
    out.measure('login_ms', login.timings.totalMs, 'ms');
    if (login.status !== 200) return out.setSummary(`login refused: ${login.status}`);
    // The API's contract: a token in the JSON body, a session cookie.
    const { token } = login.json();
    if (token === undefined) throw new Error(`the login answered without a token: ${login.text()}`);
    const cookie = (login.header('set-cookie') || '').split(';')[0];
    const me = http.get(base + ctx.get('api_path'), {
      headers: { authorization: `Bearer ${token}`, cookie },
    });
    out.expect(me).statusIs(200).jsonPointerEq('/user/name', ctx.get('expect.user'));
    out.measure('api_ms', me.timings.totalMs, 'ms');
    return out.headline(`logged in and called the API in ${(login.elapsed + me.elapsed).toFixed(3)} s`);
  }
}

export const { describe, run } = exportCheck(LoginFlow);
