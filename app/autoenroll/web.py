"""The employer's pages, server-rendered: sign up, sign in, upload a payroll file, read the summary and
the row errors, download the reports. Thin HTML over the same domain functions as the API, with the
token in a cookie (HttpOnly, SameSite=Strict) instead of a header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from autoenroll import accounts, api, columns_page, keys, runs, uploads
from autoenroll.errors import AppError, NotFound, Unauthorized
from autoenroll.files import MAX_UPLOAD_BYTES
from autoenroll.schemas import SignIn, SignUp, filename, parse_as
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


def _back_home(message: str) -> RedirectResponse:
    return RedirectResponse("/?" + urlencode({"error": message}), status_code=303)


def _form_fields(form: Any, *names: str) -> dict[str, Any]:
    return {n: form.get(n, "") for n in names}


async def _signed_in(request: Request, form: SignIn) -> Response:
    try:
        token, _claims = await accounts.sign_in(request.app.state.resources, form)
    except AppError as exc:
        return _back_home(exc.message)
    redirect = RedirectResponse("/app", status_code=303)
    secure = request.app.state.resources.settings.app_env != "local"
    redirect.set_cookie(COOKIE, token, max_age=keys.SESSION_TTL_S, httponly=True, samesite="strict", secure=secure)
    return redirect


async def login(request: Request) -> Response:
    resources = request.app.state.resources
    try:
        await accounts.rate_limit(resources, api.client_ip(request), "/api/auth/login",
                                  resources.settings.login_rate_limit_per_minute)
        form = parse_as(SignIn, _form_fields(await request.form(), "email", "password"))
    except AppError as exc:
        return _back_home(exc.message)
    return await _signed_in(request, form)


async def signup(request: Request) -> Response:
    resources = request.app.state.resources
    try:
        await accounts.rate_limit(resources, api.client_ip(request), "/api/signup",
                                  resources.settings.login_rate_limit_per_minute)
        form = parse_as(SignUp, _form_fields(await request.form(), "company", "full_name", "email", "password"))
        await accounts.sign_up(resources, form)
    except AppError as exc:
        return _back_home(exc.message)
    return await _signed_in(request, SignIn(email=form.email, password=form.password))


PageHandler = Callable[[Request, Claims], Awaitable[Response]]


def web_auth(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
    """Cookie authentication for pages (the same session checks as the API's bearer token); a missing or
    ended session sends the employer back to sign in."""

    async def endpoint(request: Request) -> Response:
        resources = request.app.state.resources
        token = request.cookies.get(COOKIE)
        if not token:
            return _back_home("Please sign in")
        await accounts.rate_limit(resources, api.client_ip(request), "/app", resources.settings.rate_limit_per_minute)
        try:
            claims = await accounts.authenticate(resources, token)
        except Unauthorized:
            return _back_home("Your session ended: sign in again")
        return await handler(request, claims)

    return endpoint


@web_auth
async def dashboard(request: Request, claims: Claims) -> Response:
    message = request.query_params.get("error")
    recent = await runs.recent_runs(request.app.state.resources, claims.tenant_id)
    rows = "".join(f"<tr><td><a href='/app/runs/{r[0]}'>{escape(r[1])}</a></td><td>{r[2]}</td><td>{r[3]}</td>"
                   f"<td>{r[4]:%Y-%m-%d %H:%M}</td></tr>" for r in recent)
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
    try:
        stored = await uploads.check_and_store(request.app.state.resources, claims, data, filename(file.filename),
                                               column_map, request.is_disconnected)
    except AppError as exc:
        mapping = columns_page.mapping_form(exc.extra, column_map) if "unrecognised_columns" in exc.extra else ""
        return page("That file could not be checked",
                    f"{_message(exc.message)}{mapping}<p><a href='/app'>Back</a></p>", status=exc.status)
    return RedirectResponse(f"/app/runs/{stored.run_id}", status_code=303)


@web_auth
async def run_page(request: Request, claims: Claims) -> Response:
    run_id = str(request.path_params["run_id"])
    try:
        run = await runs.get_run(request.app.state.resources, claims.tenant_id, run_id)
    except NotFound:
        return page("Not found", "<p>No such check.</p>", status=404)
    s, errors = run["summary"], run["errors"]
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
    return await api.report_response(request.app.state.resources, claims, str(request.path_params["run_id"]),
                                     str(request.path_params["kind"]))


async def logout(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        resources = request.app.state.resources
        with suppress(Unauthorized):  # already signed out: the cookie goes all the same
            await accounts.sign_out(resources, await accounts.authenticate(resources, token))
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
