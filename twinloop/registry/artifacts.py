"""The artifact store: model files (ONNX) kept by content hash, small ones in the Store.

An artifact's id is the sha256 of its bytes, so writing the same file twice is a no-op and a
reader can check what it got. Up to ``INLINE_BYTES`` the bytes live base64-encoded in the Store
document itself (one place for small models, shared through Redis by every node). Larger ones
are written to ``<data_dir>/artifacts/<2 hex>/<sha256>.onnx`` (temporary file, then an atomic
rename) *before* the Store document that points at them, so a document never names a missing
file; a crash between the two leaves only an orphan file that the next upload of the same bytes
reuses. Bytes reach Ray workers through :meth:`ArtifactStore.resolve`: the driver reads them once
and attaches them to the model spec (``OnnxModel.content``), so workers never need the Store or a
shared disk.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any, Final, Literal

from twinloop.errors import CorruptDocument, InvalidInput, LimitExceeded, NotFound
from twinloop.registry.frozen import Frozen
from twinloop.sim.models import ModelSpec, OnnxModel
from twinloop.sim.onnxmodel import describe, sha256_hex
from twinloop.store import Store

KIND: Final = "artifact"
INLINE_BYTES: Final = 1024 * 1024  # ≤ 1 MiB inline: 1.4 MiB of base64, far below a document's cap


class ArtifactRef(Frozen):
    """Where an artifact is and what it is; the Store document of kind ``artifact``."""

    sha256: str
    size: int
    format: Literal["onnx"] = "onnx"
    n_features: int | None = None  # the graph's declared input width, when it declares one
    location: Literal["store", "file"]
    data: str | None = None  # base64 bytes when location == "store"


class ArtifactStore:
    """Put, read and resolve artifacts by hash; ``max_bytes`` is the configured size limit."""

    def __init__(self, store: Store, data_dir: Path, *, max_bytes: int) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        return self.data_dir / "artifacts" / sha256[:2] / f"{sha256}.onnx"

    def check(self, content: bytes, *, field: str = "artifact") -> dict[str, Any]:
        """Size limit, then a trial load: LimitExceeded / InvalidInput naming ``field``."""
        if not isinstance(content, bytes | bytearray):
            raise InvalidInput(field, f"must be bytes, got {type(content).__name__}")
        if len(content) > self.max_bytes:
            raise LimitExceeded(field, len(content), self.max_bytes)
        return describe(bytes(content), field=field)  # InvalidInput when it is not ONNX

    def put(self, content: bytes, *, field: str = "artifact") -> ArtifactRef:
        """Check that ``content`` is a loadable ONNX model within the limit, and keep it once."""
        info = self.check(content, field=field)
        sha = str(info["sha256"])
        existing = self.store.find(KIND, sha)
        if existing is not None:
            return existing.to_model(ArtifactRef)
        inline = len(content) <= INLINE_BYTES
        ref = ArtifactRef(
            sha256=sha,
            size=len(content),
            n_features=info["n_features"],
            location="store" if inline else "file",
            data=base64.b64encode(content).decode("ascii") if inline else None,
        )
        if not inline:
            self._write_file(sha, bytes(content))
        self.store.put(KIND, sha, ref.model_dump(mode="json"))  # same bytes, same doc: no race
        return ref

    def _write_file(self, sha256: str, content: bytes) -> None:
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def ref(self, sha256: str) -> ArtifactRef:
        """The artifact's document; NotFound when no artifact has this hash."""
        return self.store.get(KIND, sha256).to_model(ArtifactRef)

    def exists(self, sha256: str) -> bool:
        return self.store.find(KIND, sha256) is not None

    def read(self, sha256: str) -> bytes:
        """The artifact's bytes, checked against their hash (CorruptDocument when they differ)."""
        ref = self.ref(sha256)
        if ref.location == "store":
            content = base64.b64decode(ref.data or "")
        else:
            try:
                content = self.path(sha256).read_bytes()
            except FileNotFoundError as exc:
                raise NotFound("artifact file", str(self.path(sha256))) from exc
        if sha256_hex(content) != sha256:
            raise CorruptDocument(f"artifact {sha256!r}: stored bytes do not match their hash")
        return content

    def resolve(self, model: ModelSpec) -> ModelSpec:
        """The model ready to run anywhere: an ONNX model gets its bytes attached."""
        if isinstance(model, OnnxModel) and model.content is None:
            return model.with_content(self.read(model.sha256))
        return model
