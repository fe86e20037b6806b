"""The employer's pages, server-rendered: sign up, sign in, upload a payroll file, read the summary and
the row errors, download the reports. The same handlers as the API, with the token in a cookie
(HttpOnly, SameSite=Strict) instead of a header."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from autoenroll import api, columns_page, keys
from autoenroll.files import MAX_UPLOAD_BYTES
from autoenroll.security import Claims
from autoenroll.validation.columns import html_help as columns_help

COOKIE = "ae_token"
STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left}th{background:#f3f3f3}.error{color:#a00}.box{border:1px solid #ddd;padding:1rem;margin:1rem 0;
border-radius:6px}label{display:block;margin:.4rem 0}input[type=text],input[type=email],input[type=password]{
width:20rem}.stat{display:inline-block;margin-right:1.5rem}"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(html, status_code=status)


def _message(text: str | None) -> str:
    return f"<p class='error' role='alert'>{escape(text)}</p>" if text else ""


async def home(request: Request) -> Response:
    message = request.query_params.get("error")
    return page("AutoEnroll: check your payroll for automatic enrolment", f"""{_message(message)}
<div class='box'><h2>Sign in</h2><form method='post' action='/login'>
<label>E-mail <input type='email' name='email' required></label>
<label>Password <input type='password' name='password' required></label>
<button type='submit'>Sign in</button></form></div>
<div class='box'><h2>New here? Create an account</h2><form method='post' action='/signup'>
<label>Company <input type='text' name='company' required></label>
<label>Your name <input type='text' name='full_name' required></label>
<label>E-mail <input type='email' name='email' required></label>
<label>Password (12+ characters) <input type='password' name='password' required minlength='12'></label>
<button type='submit'>Create account</button></form></div>""")


async def _call_json(request: Request, handler: Any, body: dict[str, Any]) -> Response:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    inner = Request(request.scope, receive)
    response: Response = await handler(inner)
    return response


async def login(request: Request) -> Response:
    form = await request.form()
    response = await _call_json(request, api.login, {"email": form.get("email", ""),
                                                     "password": form.get("password", "")})
    if response.status_code != 200:
        return RedirectResponse("/?error=" + json.loads(bytes(response.body))["error"], status_code=303)
    token = json.loads(bytes(response.body))["token"]
    redirect = RedirectResponse("/app", status_code=303)
    secure = request.app.state.resources.settings.app_env != "local"
    redirect.set_cookie(COOKIE, token, max_age=keys.SESSION_TTL_S, httponly=True, samesite="strict", secure=secure)
    return redirect


async def signup(request: Request) -> Response:
    form = await request.form()
    body = {k: str(form.get(k, "")) for k in ("company", "full_name", "email", "password")}
    response = await _call_json(request, api.signup, body)
    if response.status_code != 201:
        return RedirectResponse("/?error=" + json.loads(bytes(response.body))["error"], status_code=303)
    return await login(request)


def _with_bearer(request: Request, token: str) -> Request:
    """The same request, carrying the cookie's token in the header the API handlers read."""
    scope = dict(request.scope)
    scope["headers"] = [*request.scope["headers"], (b"authorization", f"Bearer {token}".encode())]
    return Request(scope, request.receive)


def web_auth(handler: Any) -> Any:
    """Cookie authentication for pages: the token moves into the header the API expects; a missing
    or ended session sends the employer back to sign in."""
    protected = api.authenticated("/app")(handler)

    async def endpoint(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if not token:
            return RedirectResponse("/?error=Please sign in", status_code=303)
        response: Response = await protected(_with_bearer(request, token))
        if response.status_code == 401:
            return RedirectResponse("/?error=Your session ended: sign in again", status_code=303)
        return response

    return endpoint


@web_auth
async def dashboard(request: Request, claims: Claims) -> Response:
    message = request.query_params.get("error")
    async with api.tenant_tx(request.app.state.resources, claims.tenant_id) as conn:
        runs = await (await conn.execute(
            "SELECT v.id, u.original_filename, v.row_count, v.error_count, v.finished_at FROM validation_runs v"
            " JOIN uploads u ON u.id = v.upload_id ORDER BY v.started_at DESC LIMIT 20")).fetchall()
    rows = "".join(f"<tr><td><a href='/app/runs/{r[0]}'>{escape(r[1])}</a></td><td>{r[2]}</td><td>{r[3]}</td>"
                   f"<td>{r[4]:%Y-%m-%d %H:%M}</td></tr>" for r in runs)
    return page("Your payroll checks", f"""{_message(message)}
<div class='box'><h2>Check a payroll file</h2>
<form method='post' action='/app/upload' enctype='multipart/form-data'>
<input type='file' name='file' accept='.csv,.xlsx' required> <button type='submit'>Upload and check</button></form>
<p>CSV or Excel (.xlsx), up to 10 MB, with columns employee_id, ppsn, first_name, last_name, date_of_birth,
employment_start, gross_pay, pay_frequency (or any of the names below).</p>{columns_help()}</div>
<table><tr><th>File</th><th>Employees</th><th>Errors</th><th>Checked</th></tr>{rows}</table>
<form method='post' action='/logout'><button type='submit'>Sign out</button></form>""")


@web_auth
async def upload(request: Request, claims: Claims) -> Response:
    form = await request.form(max_files=1, max_part_size=MAX_UPLOAD_BYTES + 1)
    file = form.get("file")
    if file is None or isinstance(file, str):
        return RedirectResponse("/app?error=Choose a file first", status_code=303)
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    column_map = columns_page.map_from_form(form)
    response = await api.store_and_validate(request.app.state.resources, claims, data, file.filename or "upload",
                                            column_map)
    result = json.loads(bytes(response.body))
    if response.status_code != 201:
        mapping = columns_page.mapping_form(result, column_map) if "unrecognised_columns" in result else ""
        return page("That file could not be checked",
                    f"{_message(result['error'])}{mapping}<p><a href='/app'>Back</a></p>", status=response.status_code)
    return RedirectResponse(f"/app/runs/{result['run_id']}", status_code=303)


@web_auth
async def run_page(request: Request, claims: Claims) -> Response:
    run_id = str(request.path_params["run_id"])
    async with api.tenant_tx(request.app.state.resources, claims.tenant_id) as conn:
        row = await (await conn.execute("SELECT summary FROM validation_runs WHERE id = %s", (run_id,))).fetchone()
        if row is None:
            return page("Not found", "<p>No such check.</p>", status=404)
        errors = await api.run_errors(conn, run_id)
    s = row[0]
    stats = "".join(f"<span class='stat'><b>{escape(k.replace('_', ' '))}</b>: {v}</span>"
                    for k, v in s["eligibility"].items())
    money = ", ".join(f"{escape(k)} EUR {escape(str(v))}" for k, v in s["contributions_per_period"].items())
    error_rows = "".join(f"<tr><td>{e['row']}</td><td>{escape(e['column'])}</td><td>{escape(e['rule'])}</td>"
                         f"<td>{escape(e['message'])}</td></tr>" for e in errors)
    warnings = "".join(f"<li>{escape(w)}</li>" for w in s.get("warnings", []))
    return page("Payroll check result", f"""
<div class='box' id='summary'><p><b>{s['rows']}</b> employees checked, <b>{s['rows_with_errors']}</b> rows with
errors.</p><p>{stats}</p><p>Contributions per pay period for those automatically enrolled: {money}</p>
<ul>{warnings}</ul>{columns_page.columns_read(s)}
<p>Download: <a href='/app/runs/{run_id}/report.pdf'>PDF summary</a> · <a href='/app/runs/{run_id}/report.csv'>
errors (CSV)</a> · <a href='/app/runs/{run_id}/report.json'>JSON</a></p></div>
<h2>Row errors</h2><table id='errors'><tr><th>Row</th><th>Column</th><th>Rule</th><th>What to fix</th></tr>
{error_rows or "<tr><td colspan='4'>No errors.</td></tr>"}</table><p><a href='/app'>Back</a></p>""")


@web_auth
async def report(request: Request, claims: Claims) -> Response:
    response: Response = await api.report_for(request, claims)
    return response


async def logout(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await api.logout(_with_bearer(request, token))
    redirect = RedirectResponse("/", status_code=303)
    redirect.delete_cookie(COOKIE)
    return redirect


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/signup", signup, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/app", dashboard, methods=["GET"]),
    Route("/app/upload", upload, methods=["POST"]),
    Route("/app/runs/{run_id:uuid}", run_page, methods=["GET"]),
    Route("/app/runs/{run_id:uuid}/report.{kind}", report, methods=["GET"]),
]
