"""The OpenAPI page at ``/docs``, with Swagger UI served from our own static files: hospitals
often run without internet access, and FastAPI's default page loads Swagger UI from a CDN."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = ["SWAGGER_STATIC", "router"]

SWAGGER_STATIC = "/app/static/swagger"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    openapi_url = request.app.openapi_url or "/openapi.json"
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} - API",
        swagger_js_url=f"{SWAGGER_STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_STATIC}/favicon-32x32.png",
        # Swagger UI would otherwise ask validator.swagger.io to validate the document.
        swagger_ui_parameters={"validatorUrl": None},
    )
