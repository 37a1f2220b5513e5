"""memos — the Python client of memosd, over its C API (libmemos.so).

    import memos

    with memos.Client.connect() as c:          # $MEMOS_SOCKET, else memosd's default
        c.cube_create("notes")
        c.add("notes", "Maya swims on Saturdays", tags=["hobby"])
        for hit in c.search("notes", "when does Maya swim", k=3, fresh=True):
            print(f"{hit.score:.3f} {memos.format_id(hit.item.id)} {hit.item.text}")

Every call raises a MemosError subclass named for its error code (NotFound,
BadRequest, ...), carrying memosd's message and `retryable`. AsyncClient
(memos.aio) is the asyncio form. libmemos.so.1 is found where the dynamic
linker finds it, or at $MEMOS_LIBRARY.
"""

from .aio import AsyncClient
from .client import Client, Pending, default_socket, format_id, parse_id
from .errors import (AlreadyExists, BadRequest, Busy, Conflict, ConnectFailed, ConnectionLost,
                     Internal, MemosError, NoMemory, NotFound, PermissionDenied, ProtocolError,
                     QuotaExceeded, RateLimited, StorageFull, TooLarge, Unavailable, Unknown)
from .types import (Activation, BucketStatus, ChatPiece, ChatReply, ClusterStatus, CompactionStatus,
                    ContextPiece, Cube, CubeGrant, CubeSchedule, Explanation, Hit, Item,
                    ItemDiff, Job, KvStats, LogReplica, LogStatus, MetaChange, ModuleRun,
                    NodeStatus, ParamInfo,
                    PluginInfo, PolicyInfo, Rank, RoutedSearch, RouterChoice, RouteScore,
                    SchedDecision, SchedPass, SchedStatus, ShardStatus, Snapshot,
                    SnapshotChange, Status, TenantUsage, UsageBound)

__version__ = "1.3.0"

__all__ = [name for name in dir() if not name.startswith("_")]
