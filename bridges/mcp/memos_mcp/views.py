"""memosd's results as the tools answer them, and the JSON Schemas of those
answers (the tools' outputSchema: hosts validate structuredContent against
them).

What a model needs and can act on: ids in the 13-character text form that
memctl prints and every tool takes, times in ISO-8601, metadata under the
name the tools take it by. Internal counters (hits, last access, the
parametric payload) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .timestamps import format_time

FormatId = Callable[[int], str]

_TIME_OR_NULL = {"type": ["string", "null"], "description": "ISO-8601 UTC; null: not set"}

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the memory's id (13 characters)"},
        "version": {"type": "integer"},
        "text": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "importance": {"type": ["number", "null"]},
        "state": {"type": "string", "description": "active, archived, frozen or deleted"},
        "deleted": {"type": "boolean"},
        "tier": {"type": "string"},
        "created_at": _TIME_OR_NULL,
        "recorded_at": dict(_TIME_OR_NULL, description="when this version was written"),
        "valid_from": dict(_TIME_OR_NULL, description="when the fact starts to hold"),
        "valid_to": dict(_TIME_OR_NULL, description="when the fact stops holding; null: open"),
        "expires_at": dict(_TIME_OR_NULL, description="null: never expires"),
        "session_id": {"type": "string"},
        "sources": {"type": "array", "items": {"type": "string"},
                    "description": "ids of the memories this one was derived from"},
        "cube_version": {"type": "integer"},
    },
    "required": ["id", "version", "text", "tags", "metadata", "state", "deleted"],
}

CUBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "live_items": {"type": "integer", "description": "memories not deleted"},
        "head_version": {"type": "integer", "description": "the cube's last write"},
        "created_at": _TIME_OR_NULL,
        "default_retriever": {"type": "string"},
        "embedder": {"type": "string"},
        "dimension": {"type": "integer"},
        "language": {"type": "string"},
        "shared_by": {"type": "string", "description": "the owner, for a cube shared with you"},
        "shared_write": {"type": "boolean"},
    },
    "required": ["name", "live_items", "default_retriever"],
}

HIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cube": {"type": "string"},
        "score": {"type": ["number", "null"]},
        "memory": ITEM_SCHEMA,
    },
    "required": ["cube", "score", "memory"],
}

SNAPSHOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tag": {"type": "string"},
        "cube_version": {"type": "integer"},
        "created_at": _TIME_OR_NULL,
        "live_items": {"type": "integer"},
    },
    "required": ["tag", "cube_version", "live_items"],
}


def finite_or_none(value: float) -> float | None:
    # JSON has no NaN or infinity.
    return value if math.isfinite(value) else None


def item_view(item: Any, format_id: FormatId) -> dict[str, Any]:
    return {
        "id": format_id(item.id),
        "version": item.version,
        "text": item.text,
        "tags": list(item.tags),
        "metadata": dict(item.meta),
        "importance": finite_or_none(item.importance),
        "state": item.state,
        "deleted": item.deleted,
        "tier": item.tier,
        "created_at": format_time(item.created_at_ms),
        "recorded_at": format_time(item.recorded_at_ms),
        "valid_from": format_time(item.valid_from_ms),
        "valid_to": format_time(item.valid_to_ms),
        "expires_at": format_time(item.expires_at_ms),
        "session_id": item.session_id,
        "sources": [format_id(s) for s in item.sources],
        "cube_version": item.cube_version,
    }


def cube_view(cube: Any) -> dict[str, Any]:
    return {
        "name": cube.name,
        "live_items": cube.live_items,
        "head_version": cube.head_version,
        "created_at": format_time(cube.created_at_ms),
        "default_retriever": cube.default_retriever,
        "embedder": cube.embedder,
        "dimension": cube.dimension,
        "language": cube.language,
        "shared_by": cube.shared_by,
        "shared_write": cube.shared_write,
    }


def hit_view(hit: Any, format_id: FormatId) -> dict[str, Any]:
    return {"cube": hit.cube, "score": finite_or_none(hit.score),
            "memory": item_view(hit.item, format_id)}


def snapshot_view(snapshot: Any) -> dict[str, Any]:
    return {
        "tag": snapshot.tag,
        "cube_version": snapshot.cube_version,
        "created_at": format_time(snapshot.created_at_ms),
        "live_items": snapshot.live_items,
    }
