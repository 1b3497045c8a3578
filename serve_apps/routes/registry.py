"""Routes of the model registry: families, versions (JSON or ONNX upload), aliases, championships.

Every route has the family in its path, so each is a short hand-written endpoint over its
declared operation. ``POST /models/{family}/versions`` takes JSON (a ``VersionCreate``) or
``multipart/form-data`` with the ONNX file in ``file`` and optional ``metadata`` JSON; the edge's
body limit applies to both (413), the artifact limit (``TWINLOOP_MAX_ARTIFACT_BYTES``) to the
file. A championship always runs in the background: its checks run first (404/422/413 at once),
then the answer is 202 with the run to poll at ``GET /runs/{id}``.
"""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
import json
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from serve_apps.operations import Operation
from serve_apps.routes.base import Call, EdgeDep, OperationRouter, background, json_response
from serve_apps.schemas.registry import (
    PATTERNS,
    AliasMove,
    AliasState,
    ChampionshipBody,
    ChampionshipRequest,
    FamilyCreate,
    FamilyDetail,
    VersionCreate,
    VersionList,
)
from twinloop.championship.results import ChampionshipDecision
from twinloop.errors import InvalidInput
from twinloop.registry.models import ModelVersion
from twinloop.sim.onnxmodel import sha256_hex

router = OperationRouter("registry")
FamilyPath = Annotated[str, Path(pattern=PATTERNS["family"])]
VersionPath = Annotated[str, Path(pattern=PATTERNS["version"])]
AliasPath = Annotated[str, Path(pattern=r"^(champion|challenger|canary)$")]


def _op(name: str, method: str, path: str, response: Any, **kw: Any) -> Operation:
    return Operation(
        name=name,
        capability="registry",
        method=method,  # type: ignore[arg-type]
        path=path,
        response=response,
        tag="models",
        **kw,
    )


CREATE_FAMILY = _op(
    "create_family", "POST", "/models/{family}", FamilyDetail, status=201, errors=(409,),
    summary="Create a model family",
)  # fmt: skip
GET_FAMILY = _op("get_family", "GET", "/models/{family}", FamilyDetail)
REGISTER_VERSION = _op(
    "register_version", "POST", "/models/{family}/versions", ModelVersion, status=201,
    errors=(409,), summary="Register a version: JSON, or an ONNX upload as multipart/form-data",
)  # fmt: skip
LIST_VERSIONS = _op("list_versions", "GET", "/models/{family}/versions", VersionList)
GET_VERSION = _op("get_version", "GET", "/models/{family}/versions/{version}", ModelVersion)
MOVE_ALIAS = _op(
    "move_alias", "PUT", "/models/{family}/aliases/{alias}", AliasState, errors=(409,),
    summary="Move an alias by compare-and-set (409 on a conflict), or roll it back",
)  # fmt: skip
HOLD_CHAMPIONSHIP = _op(
    "hold_championship", "POST", "/models/{family}/championship", ChampionshipDecision,
    request=ChampionshipRequest, background="always",
    summary="Round robin in the twin, confirmation on fresh seeds, gates; 202 + run id",
)  # fmt: skip


@router.endpoint(CREATE_FAMILY)
async def create_family(family: FamilyPath, body: FamilyCreate, call: Call) -> Response:
    detail = await call(CREATE_FAMILY, family, body)
    return json_response(detail, 201, {"Location": f"/models/{family}"})


@router.endpoint(GET_FAMILY)
async def get_family(family: FamilyPath, call: Call) -> Response:
    return json_response(await call(GET_FAMILY, family))


@router.endpoint(REGISTER_VERSION)
async def register_version(family: FamilyPath, request: Request, call: Call) -> Response:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        body = await _upload(request)
    else:
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput("body", f"is not valid JSON: {exc}") from exc
        body = VersionCreate.model_validate(data)
    version = await call(REGISTER_VERSION, family, body)
    return json_response(version, 201, {"Location": f"/models/{family}/versions/{version.id}"})


async def _upload(request: Request) -> VersionCreate:
    """The multipart form: ``file`` (ONNX bytes) and optional ``metadata`` (JSON)."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("file", "the form needs the ONNX model as a file field named 'file'")
    content = await upload.read()
    raw = form.get("metadata") or "{}"
    try:
        meta = json.loads(raw if isinstance(raw, str) else await raw.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("metadata", f"is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise InvalidInput("metadata", "must be a JSON object")
    operational = meta.pop("model", {})
    if not isinstance(operational, dict):
        raise InvalidInput("metadata.model", "must be a JSON object of operational fields")
    model = {**operational, "type": "onnx", "sha256": sha256_hex(content), "content": content}
    return VersionCreate.model_validate({**meta, "model": model})


@router.endpoint(LIST_VERSIONS)
async def list_versions(family: FamilyPath, call: Call) -> Response:
    return json_response(await call(LIST_VERSIONS, family))


@router.endpoint(GET_VERSION)
async def get_version(family: FamilyPath, version: VersionPath, call: Call) -> Response:
    return json_response(await call(GET_VERSION, family, version))


@router.endpoint(MOVE_ALIAS)
async def move_alias(family: FamilyPath, alias: AliasPath, body: AliasMove, call: Call) -> Response:
    return json_response(await call(MOVE_ALIAS, family, alias, body))


@router.endpoint(HOLD_CHAMPIONSHIP)
async def hold_championship(
    family: FamilyPath, body: ChampionshipBody, request: Request, edge: EdgeDep
) -> Response:
    spec = ChampionshipRequest.model_validate(
        {**body.model_dump(exclude_unset=True), "family": family}
    )
    client = edge.client(HOLD_CHAMPIONSHIP)
    await client.call("check_championship", spec, timeout=request.state.deadline_s)
    return await background(
        edge, HOLD_CHAMPIONSHIP, spec, "a championship always runs in the background"
    )
