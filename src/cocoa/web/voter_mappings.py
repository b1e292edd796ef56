"""The saved column mappings page (issue 17): ``/voters/mappings``.

Any signed-in user sees the mappings a voter import can name with
``mapping=<name>``; admins also get a delete button per mapping, a plain
form POST (CSRF-checked, role read again from the database) that works
without JavaScript. Jobs created with a deleted mapping are unaffected: each
stored the mapping it resolved.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from cocoa.domain.errors import InputError
from cocoa.domain.voter_files.mapping import MAPPABLE_FIELDS
from cocoa.jobtypes.import_voters.saved_mappings import delete_mapping, list_mappings
from cocoa.web import routes, security

router = APIRouter(include_in_schema=False)
PAGE = "/voters/mappings"


def mount(app: FastAPI) -> None:
    app.include_router(router)


@router.get(PAGE, response_class=HTMLResponse)
def mappings_page(request: Request) -> Response:
    if security.current_user(request) is None:
        return routes.to_login(request)
    found = list_mappings(request.app.state.manager.engine)
    return routes.render(request, "voter_mappings.html",
                         {"mappings": found, "fields": MAPPABLE_FIELDS})


@router.post(PAGE + "/{name}/delete")
async def delete_page_mapping(request: Request, name: str) -> Response:
    """Delete one mapping, then back to the list with a message saying what happened."""
    user = security.current_user(request)
    if user is None:
        return routes.to_login(request)
    refused = await run_in_threadpool(routes._refuse_role, request, user)
    if refused is not None:
        return routes.error_page(request, 403, *refused)
    form = await routes._small_form(request)
    if isinstance(form, Response):
        return form
    try:
        if not security.csrf_ok(request, form):
            return routes.error_page(request, 403, "Form expired",
                                     "The form expired; reload the page and try again.")
    finally:
        await form.close()
    engine = request.app.state.manager.engine
    try:
        await run_in_threadpool(delete_mapping, engine, name)
    except InputError:
        security.flash(request, f"No saved mapping is called {name[:64]!r}; nothing was deleted.",
                       "error")
    else:
        security.flash(request, f"Deleted mapping {name[:64]!r}.")
    return RedirectResponse(PAGE, status_code=303)
