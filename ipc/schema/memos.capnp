# memos.capnp — the client protocol of memosd.
#
# Every frame on the Unix socket is one standard Cap'n Proto message (segment
# table, then segments) holding one Request (client to daemon) or one Response
# (daemon to client). A client picks the request id; the daemon echoes it in
# the response. A connection may have many requests in flight and responses
# may arrive in any order, so clients match them by id.
#
# Compatibility: fields and union members are only ever added at the end with
# new ordinals; none is renumbered or removed.
#
# Replies are bounded: none is larger than the message limit (memosd.conf's
# ipc.max_message_bytes), and the daemon never builds one that would be. A
# list that can outgrow it is paged (history: ItemRef.paged and HistoryPage)
# or refused up front with tooLarge saying how much would fit (search: a
# smaller k). Any other reply that would exceed it is refused with tooLarge.

@0xee88cd03dca06122;

$import "/capnp/c++.capnp".namespace("memos::wire");

struct Request {
  id @0 :UInt64;                  # chosen by the client, echoed in the response
  # Makes a retried write safe: honoured by add, update, remove, setState and
  # rollback. A second request with the same key (same tenant) writes nothing
  # and returns the first outcome. At most 128 bytes.
  idempotencyKey @1 :Text;

  union {
    status @2 :Void;
    cubeCreate @3 :CubeCreate;
    cubeList @4 :Void;
    cubeShow @5 :CubeRef;
    cubeRemove @6 :CubeRemove;
    add @7 :AddItem;
    get @8 :GetItem;
    update @9 :UpdateItem;
    remove @10 :ItemRef;
    history @11 :ItemRef;
    search @12 :Search;
    setState @13 :SetState;
    rollback @14 :Rollback;
    diff @15 :DiffVersions;
    snapshotCreate @16 :SnapshotRef;
    snapshotList @17 :CubeRef;
    snapshotDiff @18 :SnapshotDiff;
    exportChunk @19 :ExportChunk;
    importBegin @20 :ImportBegin;
    importChunk @21 :ImportChunk;
    importFinish @22 :UInt64;       # the import session
    pluginList @23 :Void;
    pluginInfo @24 :Text;           # a plugin's name
    pluginReload @25 :Text;         # a plugin's name
    chat @26 :Chat;
    kvPrefill @27 :KvPrefill;
    kvList @28 :CubeRef;
    kvRemove @29 :ItemRef;          # an activation item of the cube
    kvStats @30 :Void;
    policyShow @32 :Text;           # a tenant's name; "": the caller's own policy
    policyReload @33 :Void;         # re-read the policy folder (admins)
    tenantUsage @34 :Text;          # a tenant's name; "": the caller's own (others: admins)
    cubeShare @35 :CubeShare;       # the owner grants another tenant access
    cubeUnshare @36 :CubeShare;     # the owner takes a grant back
    schedStatus @37 :Text;          # a cube's name; "": every cube of the caller's with a working set
    schedLog @38 :SchedLogQuery;
    schedRun @39 :Void;             # a scheduler pass now over the caller's cubes (an admin's: all)
    explain @40 :ItemRef;           # a memory's strength, retention and placement
    paramAdd @41 :ParamAdd;         # a LoRA adapter into a cube (uploaded in chunks)
    paramList @42 :CubeRef;         # the cube's adapters
    paramShow @43 :ParamRef;        # one adapter (its head, or a version)
    paramRemove @44 :ParamRef;      # a tombstone version of an adapter
    paramExport @45 :ParamRef;      # an adapter's GGUF, a chunk at a time
    paramCvec @46 :ParamCvec;       # a control vector derived from two sets of memories
    paramDistill @47 :ParamDistill; # starts a job distilling memories into an adapter -> job
    jobList @48 :Void;              # the tenant's background jobs -> jobs
    jobShow @49 :UInt64;            # one -> job
    jobCancel @50 :UInt64;          # stops one (its item is never written) -> job
    metrics @51 :Void;              # Prometheus text (admin only) -> metrics
    clusterStatus @52 :Void;        # nodes, shards, owners and lag (admin only) -> cluster
    clusterStepDown @54 :Void;      # the log's leader gives its role to another replica
                                    # (admin only) -> cluster, its `log` only
  }

  # A write (add, update, remove, setState, rollback) is answered once its
  # commit is durable; its indexing follows within a bounded lag. With this
  # set it is answered only once it is also searchable (read-your-writes for
  # the next search on any connection). Ignored by other requests.
  waitSearchable @31 :Bool;

  # Cluster mode (memos-cluster(7)): a read of the store (get, history,
  # search, list, show, diff, export, usage, the scheduler's status and log)
  # on any node sees every write acknowledged before it arrived; a node that
  # is not an owner within its lease first asks the log where it ends and
  # waits to hold it that far. With this set, a node whose store was known
  # to hold the whole log at most this many milliseconds ago answers at
  # once. 0: no staleness. Ignored by writes, and by a single memosd.
  maxStalenessMs @53 :UInt32;
}

struct Response {
  id @0 :UInt64;                  # the id of the request this answers

  union {
    error @1 :Error;
    status @2 :Status;
    cube @3 :Cube;                # cubeCreate, cubeShow
    cubes @4 :List(Cube);         # cubeList
    item @5 :Item;                # add, get, update, remove (the tombstone)
    history @6 :List(Item);       # history, oldest version first
    hits @7 :List(Hit);           # search, best first
    cubeRemoved @8 :Void;         # cubeRemove
    diff @9 :ItemDiff;            # diff
    snapshot @10 :Snapshot;       # snapshotCreate
    snapshots @11 :List(Snapshot);  # snapshotList, oldest first
    changes @12 :List(SnapshotChange);  # snapshotDiff, in item id order
    archiveChunk @13 :ArchiveChunk;     # exportChunk
    importSession @14 :UInt64;          # importBegin
    importProgress @15 :UInt64;         # importChunk: versions read so far
    plugins @16 :List(PluginInfo);      # pluginList, by name
    plugin @17 :PluginInfo;             # pluginInfo, pluginReload
    chat @18 :ChatReply;                # chat
    activation @19 :Activation;         # kvPrefill, kvRemove (the removed item)
    activations @20 :List(Activation);  # kvList, in id order
    kvStats @21 :KvStats;               # kvStats
    historyPage @22 :HistoryPage;       # history with ItemRef.paged
    chatPiece @23 :ChatPiece;           # chat with Chat.stream, ahead of its ChatReply
    policy @25 :PolicyInfo;             # policyShow; policyReload (the caller's, after it)
    usage @26 :TenantUsage;             # tenantUsage
    schedStatus @27 :SchedStatus;       # schedStatus
    schedLog @28 :List(SchedDecision);  # schedLog, oldest first
    schedPass @29 :SchedPass;           # schedRun: the pass it ran
    explanation @30 :Explanation;       # explain
    paramUpload @31 :UInt64;            # paramAdd with `more`: the upload to continue
    params @32 :List(Item);             # paramList, by name
    paramBytes @33 :ParamBytes;         # paramExport
    job @34 :Job;                       # paramDistill, jobShow, jobCancel
    jobs @35 :List(Job);                # jobList, oldest first
    routedSearch @36 :RoutedSearch;     # search with a budget or route
    metrics @37 :Text;                  # metrics: the text exposition format 0.0.4
    cluster @38 :ClusterStatus;         # clusterStatus
  }

  # More responses to this request follow: this one is a piece of the
  # answer (chatPiece), not its end. The last response to a request (its
  # result or an error) never has it set.
  partial @24 :Bool;
}

# ---- errors ---------------------------------------------------------------

enum ErrorCode {
  unknown @0;            # a code this peer does not know (newer peer)
  badRequest @1;         # malformed or invalid request; do not retry as is
  notFound @2;           # the cube, item or version does not exist
  alreadyExists @3;      # a cube or snapshot with that name exists, or
                         # (add) a live item with exactly that text
  tooLarge @4;           # a field or the message exceeds a configured limit
  busy @5;               # the daemon is overloaded; retry later
  unavailable @6;        # shutting down or storage temporarily unavailable
  internal @7;           # a bug or an unexpected storage failure
  conflict @8;           # the request conflicts with the current state
  permissionDenied @9;   # the tenant may not do this
  storageFull @10;       # disk or map full; retry when space returns
  quotaExceeded @11;     # a bound of the tenant's policy (memos-policy(5)); not
                         # retryable until the tenant holds less or the bound rises
  rateLimited @12;       # over a rate of the tenant's policy; retry after retryAfterMs
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;      # human readable, one line
  retryable @2 :Bool;    # true if the same request may succeed later
  retryAfterMs @3 :UInt32;  # rateLimited: when the tenant's bucket has a token again
}

# ---- cubes ----------------------------------------------------------------

struct CubeRef {
  name @0 :Text;
}

struct CubeCreate {
  name @0 :Text;         # 1..64 of [A-Za-z0-9._-], not starting with . or -
  # How search ranks unless a request says: "dense", "lexical" or "hybrid";
  # empty: the daemon's search.default_mode.
  retriever @1 :Text;
  language @2 :Text;     # stemming language of lexical search; empty: english
}

struct CubeRemove {
  name @0 :Text;
  force @1 :Bool;        # remove even if it still holds live items
}

struct Cube {
  id @0 :UInt64;
  name @1 :Text;
  ownerUid @2 :UInt32;
  createdAtMs @3 :Int64;
  embedder @4 :Text;     # e.g. "hash-v1"
  dimension @5 :UInt32;
  liveItems @6 :UInt64;  # items whose head version is not a tombstone
  headVersion @7 :UInt64;  # advanced by every item version written
  defaultRetriever @8 :Text;
  language @9 :Text;
  # cubeShow only: what each retriever holds, e.g. "dense: hnsw, 120000
  # documents, 3 tombstones, rebuilding; lexical: 120000 documents".
  indexes @10 :Text;
  # A cube another tenant shares with the caller (cubeList, cubeShow): its
  # owner's tenant name, and "read" or "write"; its name is then
  # "owner/cube", the name its requests use. Both empty for the caller's
  # own cubes.
  sharedBy @11 :Text;
  access @12 :Text;
  # cubeShow, cubeShare and cubeUnshare, for its owner: whom it is shared
  # with, by uid.
  shares @13 :List(CubeGrant);
}

# Another tenant's access to a cube: "alice/notes" names it in that
# tenant's requests.
struct CubeShare {
  cube @0 :Text;         # the caller's own cube (a plain name)
  tenant @1 :Text;       # a tenant's name (memos-policy(5)), a user name or uid:N
  write @2 :Bool;        # cubeShare: may also add, update and remove its
                         # items; else read only. Ignored by cubeUnshare.
}

struct CubeGrant {
  tenant @0 :Text;       # its name, as `memctl tenant usage` prints it
  uid @1 :UInt32;        # the uid its memory is stored under
  access @2 :Text;       # "read" or "write"
  grantedAtMs @3 :Int64;
}

struct SnapshotRef {
  cube @0 :Text;
  tag @1 :Text;          # like a cube name
}

struct SnapshotDiff {
  cube @0 :Text;
  fromTag @1 :Text;
  toTag @2 :Text;        # empty: the cube as it is now
}

struct Snapshot {
  tag @0 :Text;
  cubeVersion @1 :UInt64;
  createdAtMs @2 :Int64;
  liveItems @3 :UInt64;
  createdBy @4 :UInt32;
}

enum ChangeKind {
  added @0;
  removed @1;
  changed @2;
}

struct SnapshotChange {
  itemId @0 :UInt64;
  kind @1 :ChangeKind;
  fromVersion @2 :UInt32;  # 0: not live at the first
  toVersion @3 :UInt32;    # 0: not live at the second
  text @4 :Text;           # at the second, or at the first if removed
}

# ---- memory items ---------------------------------------------------------

struct MetaEntry {
  key @0 :Text;
  value @1 :Text;
}

enum Tier {
  plaintext @0;
  activation @1;
  parametric @2;
}

# Lifecycle: active <-> archived <-> frozen (setState); active or archived ->
# deleted (remove); deleted -> active (rollback). Frozen items are immutable.
enum State {
  active @0;
  archived @1;
  frozen @2;
  deleted @3;
}

struct AddItem {
  cube @0 :Text;
  text @1 :Text;
  tags @2 :List(Text);
  meta @3 :List(MetaEntry);
  importance @4 :Float32;    # 0..1
  ttlMs @5 :Int64;           # 0: never expires
  validFromMs @6 :Int64;     # when the fact starts to hold; 0: now
  validToMs @7 :Int64;       # when it stops; 0: open
  sessionId @8 :Text;        # provenance
  sources @9 :List(UInt64);  # provenance: items it was derived from
  supersedes @10 :UInt64;    # an item whose fact this one replaces; 0: none
  tier @11 :Tier;            # only plaintext is accepted so far
  # Store the text even if a live item of the cube (active, archived or
  # frozen) already holds exactly the same bytes. Without it such an add is
  # refused with alreadyExists naming that item; tags, metadata and the rest
  # are not compared. Text that is empty or only ASCII whitespace is always
  # refused (badRequest).
  allowDuplicate @12 :Bool;
}

struct GetItem {
  cube @0 :Text;
  itemId @1 :UInt64;
  version @2 :UInt32;    # 0 = the head version
}

struct UpdateItem {
  cube @0 :Text;
  itemId @1 :UInt64;
  text @2 :Text;
  # Tags and metadata are replaced only when the matching flag is set, so an
  # update of the text alone keeps them.
  replaceTags @3 :Bool;
  tags @4 :List(Text);
  replaceMeta @5 :Bool;
  meta @6 :List(MetaEntry);
  sessionId @7 :Text;
}

struct SetState {
  cube @0 :Text;
  itemId @1 :UInt64;
  state @2 :State;           # active, archived or frozen
}

struct Rollback {
  cube @0 :Text;
  itemId @1 :UInt64;
  version @2 :UInt32;        # the version whose content becomes the head again
}

struct DiffVersions {
  cube @0 :Text;
  itemId @1 :UInt64;
  fromVersion @2 :UInt32;
  toVersion @3 :UInt32;      # 0: the latest version
}

struct MetaChange {
  key @0 :Text;
  before @1 :Text;
  after @2 :Text;
  hadBefore @3 :Bool;
  hasAfter @4 :Bool;
}

struct ItemDiff {
  from @0 :Item;
  to @1 :Item;
  textChanged @2 :Bool;
  tagsAdded @3 :List(Text);
  tagsRemoved @4 :List(Text);
  metaChanges @5 :List(MetaChange);
  stateChanged @6 :Bool;
  validityChanged @7 :Bool;
}

struct ItemRef {
  cube @0 :Text;
  itemId @1 :UInt64;
  # history only: answer with a HistoryPage of the versions after
  # `pageAfter` (0: from the first). Without `paged`, a history larger than
  # one reply is refused with tooLarge.
  paged @2 :Bool;
  pageAfter @3 :UInt32;
}

struct HistoryPage {
  versions @0 :List(Item);  # oldest first: as many as fit in one reply, at least one
  more @1 :Bool;            # later versions remain: ask again after the last one here
}

struct Item {
  id @0 :UInt64;         # time-ordered: 48 bits of Unix ms, 16 bits of sequence
  version @1 :UInt32;    # 1 for the first version
  text @2 :Text;
  tags @3 :List(Text);
  meta @4 :List(MetaEntry);
  createdAtMs @5 :Int64; # when version 1 was written
  recordedAtMs @6 :Int64; # when this version was written (transaction time)
  deleted @7 :Bool;      # this version is a tombstone (state == deleted)
  tier @8 :Tier;
  state @9 :State;
  importance @10 :Float32;
  expiresAtMs @11 :Int64; # 0: never
  validFromMs @12 :Int64; # valid time: when the fact starts to hold
  validToMs @13 :Int64;   # when it stops holding; 0: still holds
  writerUid @14 :UInt32;  # provenance of this version
  sessionId @15 :Text;
  sources @16 :List(UInt64);
  cubeVersion @17 :UInt64; # the cube's head version when this was written
  # How often the item was read (get, search hits), counted in batches about
  # once a second; filled in by get and search.
  hits @18 :UInt64;
  lastAccessMs @19 :Int64;
  # A parametric item's adapter (tier parametric); absent on other tiers.
  param @20 :ParamInfo;
}

# ---- parametric tier (memos(7), "Tiers") ------------------------------------

# A LoRA adapter held by a parametric item; its GGUF is in the blob store.
struct ParamInfo {
  kind @0 :Text;          # "lora", or "cvec" (a control vector: tensors are its layers)
  name @1 :Text;          # unique among the cube's adapters
  digest @2 :Text;        # hex SHA-256 of the GGUF
  bytes @3 :UInt64;
  scale @4 :Float32;      # the scale a chat uses unless it names one
  baseModel @5 :Text;     # hex SHA-256 of the model it is bound to
  architecture @6 :Text;
  tensors @7 :UInt32;     # adapted matrices
  rank @8 :UInt32;
  alpha @9 :Float32;
  origin @10 :Text;       # "imported", or the distillation that made it
}

# Uploads a LoRA adapter's GGUF in chunks on one connection: the first
# chunk has upload 0 and is answered paramUpload (the upload's id) while
# `more` is set; each next chunk names that id; the last (more unset) is
# answered with the item once the executor has checked the file against its
# model and the item is durable. An adapter already named in the cube gets
# a new version (rollback brings an old one back). A connection that closes
# abandons its uploads.
struct ParamAdd {
  cube @0 :Text;
  name @1 :Text;          # 1..64 of [A-Za-z0-9._-], not starting with . or -
  upload @2 :UInt64;      # 0: a new upload
  data @3 :Data;          # the next bytes of the file
  more @4 :Bool;          # chunks follow
  scale @5 :Float32;      # the default scale for chats; 0: 1
  description @6 :Text;   # the item's text; empty: one is made from the facts
}

struct ParamRef {
  cube @0 :Text;
  name @1 :Text;
  version @2 :UInt32;     # paramShow, paramExport: 0 = the head
  offset @3 :UInt64;      # paramExport: where the chunk starts
}

struct ParamBytes {
  data @0 :Data;          # at most 1 MiB from `offset`
  total @1 :UInt64;       # the file's size
  version @2 :UInt32;     # the version exported
}

# Derives a control vector from the cube's memories (plaintext -> parametric):
# the per-layer mean hidden state of the active memories tagged `positive`
# less that of those tagged `negative` (at most 256 of each, the newest),
# stored as the parametric item `name` (kind "cvec"; a new version if the
# cube holds the name) whose provenance lists those memories. Answered with
# the item; runs on the executor lane like a prefill.
struct ParamCvec {
  cube @0 :Text;
  name @1 :Text;
  positive @2 :Text;      # a tag
  negative @3 :Text;      # another tag
  scale @4 :Float32;      # the default scale for chats; 0: 1
  description @5 :Text;   # the item's text; empty: one is made
}

# Distills plaintext memories of a cube into a LoRA adapter of the
# executor's model (memos(7), "Tiers"), as a background job on the executor
# lane: the answer is the job, queued; `memctl job show` follows it. The
# adapter is written as one new item (or version) once the job is done,
# never before, with the memories as its sources.
struct ParamDistill {
  cube @0 :Text;
  name @1 :Text;          # the adapter's
  tag @2 :Text;           # the memories tagged so ...
  ids @3 :List(UInt64);   # ... or these; neither: every active memory of the cube
  rank @4 :UInt32;        # 0: 8
  steps @5 :UInt32;       # training steps; 0: 40
  scale @6 :Float32;      # the default scale for chats; 0: 1
  description @7 :Text;   # the item's text; empty: one is made
}

# A background job of the tenant's (jobs live in memory: a restart forgets
# them, and a job cut short wrote nothing).
struct Job {
  id @0 :UInt64;
  kind @1 :Text;          # "distill"
  cube @2 :Text;
  name @3 :Text;          # what it makes
  state @4 :Text;         # queued, running, done, failed, cancelled
  done @5 :UInt32;        # steps run ...
  total @6 :UInt32;       # ... of these (0 until it starts)
  loss @7 :Float32;       # a distillation's last training loss
  message @8 :Text;       # failed: why; done: what it wrote
  createdAtMs @9 :Int64;
  startedAtMs @10 :Int64;  # 0: not yet
  finishedAtMs @11 :Int64; # 0: not yet
  itemId @12 :UInt64;      # done: the item written ...
  version @13 :UInt32;     # ... and its version
  memories @14 :UInt32;    # the memories it learns from
  tokens @15 :UInt32;      # their tokens
}

# An adapter a chat runs with: a parametric item of the chat's cube.
struct AdapterUse {
  name @0 :Text;
  scale @1 :Float32;      # 0: the item's own scale
}

# ---- search ---------------------------------------------------------------

# Every condition is applied inside the retrievers (memos(7)), so k hits
# come back whenever k items qualify.
struct Search {
  cube @0 :Text;
  query @1 :Text;
  k @2 :UInt32;          # 0 = 10
  tags @3 :List(Text);   # only items carrying all of these tags
  asOfMs @4 :Int64;      # only facts valid at this time; 0: now
  includeArchived @5 :Bool;
  mode @6 :Text;         # "dense", "lexical" or "hybrid"; empty: the cube's default
  anyTags @7 :List(Text);  # only items carrying at least one of these
  meta @8 :List(MetaEntry);  # only items whose metadata has each key with that value
  tiers @9 :List(Tier);  # empty: any tier
  states @10 :List(State);  # empty: active (and archived with includeArchived); not deleted
  recordedSinceMs @11 :Int64;  # recorded at or after this time; 0: no bound
  recordedUntilMs @12 :Int64;  # recorded before this time; 0: no bound
  validSinceMs @13 :Int64;     # facts holding at some time in [since, until); 0: no bound
  validUntilMs @14 :Int64;
  explain @15 :Bool;     # fill Hit.ranks
  cubes @16 :List(Text); # further cubes searched with `cube`, one ranking over all
  # Hybrid weighting; 0 keeps the daemon's default (search.* in memosd.conf).
  recencyWeight @17 :Float32;
  importanceWeight @18 :Float32;
  mmrLambda @19 :Float32;  # 0: default; in (0,1): diversify; 1 or more: off
  # See every write answered before this search arrived: wait (at most the
  # indexing lag) until they are searchable. Off: search what is indexed now.
  fresh @20 :Bool;
  # With hasMinScore, only the hits (of the k best) whose relevance is at
  # least minScore come back, possibly none. Relevance is the hit's score in
  # dense (cosine similarity, -1..1) and lexical (BM25, 0 and up) modes; in
  # hybrid, whose fused score only orders the hits, it is the dense
  # retriever's cosine similarity of the hit, and a hit the dense retriever
  # did not rank among its candidates does not pass. minScore must be finite.
  minScore @21 :Float32;
  hasMinScore @22 :Bool;
  # Hybrid: add this weight times each memory's retention R = exp(-t / S)
  # (memos(7), "Scheduling"), so memories in use rank above forgotten ones
  # of like relevance. 0: off (the default).
  retentionWeight @23 :Float32;
  # Routing (memos(7), "Routing"): with a budget or a route, the search runs
  # the query-time memory modules (retrieve, temporal, expand, compress) at
  # cost tiers and answers routedSearch (the hits, the context built from
  # them, each module's tier and cost) instead of hits.
  budget @24 :Text;        # "low", "mid" or "high": every module at that tier; empty: mid
  route @25 :Text;         # "MODULE=TIER,..." over the budget's ("retrieve=high,expand=low")
  referenceMs @26 :Int64;  # when the question is asked (its time words); 0: now
  contextTokens @27 :UInt32;  # compress=mid's token budget; 0: the daemon's
  # Budget "auto": the price of cost against quality the router weighs
  # (predicted recall - lambda x normalised cost); 0: the tenant's.
  lambda @28 :Float32;
}

# A routed search's answer (Search.budget).
struct RoutedSearch {
  hits @0 :List(Hit);
  context @1 :List(ContextPiece);  # what a model would be handed, in order
  contextTokens @2 :UInt32;        # estimated (a quarter of the bytes)
  modules @3 :List(ModuleRun);     # in pipeline order
  router @4 :RouterChoice;         # budget "auto", or explained
}

# How a routed request's tiers were chosen: by the router (budget "auto"),
# or not (a fixed route explained: the features a router would read).
struct RouterChoice {
  source @0 :Text;        # the router plugin, "default tier", "budget spent" or "fixed route"
  reason @1 :Text;        # the router's, or why it was not asked
  route @2 :Text;         # the route run, "retrieve=mid,temporal=mid,..."
  ms @3 :Float64;         # features, embedding and the router's call
  features @4 :List(RouterFeature);
  vector @5 :List(Float32);  # the query's embedding (explain only)
  scores @6 :List(RouteScore);  # the routes the router weighed, best first
}

struct RouterFeature {
  name @0 :Text;
  value @1 :Float32;
}

struct RouteScore {
  route @0 :Text;
  quality @1 :Float32;    # predicted evidence recall of its context
  cost @2 :Float32;       # normalised, 0..1
  score @3 :Float32;      # quality - lambda x cost
}

struct ContextPiece {
  cube @0 :Text;
  itemId @1 :UInt64;
  text @2 :Text;          # the memory's text, or the sentences compress kept
  tokens @3 :UInt32;
  neighbourOf @4 :UInt64; # 0: a hit; else the hit whose neighbouring turn it is
}

struct ModuleRun {
  module @0 :Text;        # "retrieve", "temporal", "expand" or "compress"
  tier @1 :Text;          # "low", "mid" or "high"
  ms @2 :Float64;         # wall time
  detail @3 :Text;        # what it did
}

struct Hit {
  item @0 :Item;
  # dense: cosine similarity; lexical: BM25; hybrid: fused reciprocal rank
  # (1 = first in both lists) plus any recency and importance boosts.
  # Search.minScore compares with ranks' dense score in hybrid mode.
  score @1 :Float32;
  cube @2 :Text;         # the cube it came from
  ranks @3 :List(Rank);  # with explain: how each retriever ranked it
}

struct Rank {
  retriever @0 :Text;    # "dense", "lexical" or "hybrid"
  rank @1 :UInt32;       # 1-based; 0: not among that retriever's candidates
  score @2 :Float32;
}

# ---- status ---------------------------------------------------------------

struct Status {
  version @0 :Text;
  pid @1 :UInt32;
  uptimeMs @2 :Int64;
  tenantUid @3 :UInt32;  # the uid the daemon sees for this connection
  cubes @4 :UInt32;      # cubes this tenant owns
  # connections, requestsServed, dataDir and the plugins' paths and settings
  # are filled only for an admin (root or memosd's own uid): see `admin`.
  connections @5 :UInt32;
  requestsServed @6 :UInt64;
  dataDir @7 :Text;
  socket @8 :Text;
  plugins @9 :List(PluginInfo);
  admin @10 :Bool;       # this connection's uid may do admin operations (plugin reload)
  # Indexing behind the acknowledgements (admin only, like connections):
  indexBacklog @11 :UInt64;     # writes answered and not yet searchable
  indexOldestMs @12 :Float64;   # how long the oldest of them has waited
  freshnessP50Ms @13 :Float64;  # commit to searchable, recent commit groups
  freshnessP99Ms @14 :Float64;
  # The scheduler (memos(7), "Scheduling"): its background work.
  schedulerPasses @15 :UInt64;          # since memosd started
  schedulerLastPassMs @16 :Int64;       # when the last timed pass began; 0: none yet
  schedulerWorkingSets @17 :UInt32;     # the caller's cubes with a working set
  schedulerPrefillsPending @18 :UInt32; # working-set prefills queued on the executor lane
  # The executor (executor.device): where it runs, as it said when loaded.
  executorDevice @19 :Text;             # "CPU" or the GPU's name ("CUDA0"); "" no executor
  executorDeviceDescription @20 :Text;  # e.g. "NVIDIA H200"
  executorDeviceNote @21 :Text;         # device "auto" without a GPU: why not
  executorGpuLayers @22 :UInt32;        # of executorLayers, in the GPU's memory
  executorLayers @23 :UInt32;
  executorDeviceMemoryBytes @24 :UInt64;
}

# ---- cluster (memos-cluster(7)) ---------------------------------------------

# The cluster as the node that answers sees it now: the log's last record and
# the owner of each shard, as etcd and the log say, and each node on the
# roster as it answers itself.
struct ClusterStatus {
  enabled @0 :Bool;        # false: memosd runs as one node; nothing else is set
  name @1 :Text;           # cluster.name
  node @2 :Text;           # the node that answered
  replicas @3 :UInt32;     # of the log (cluster.replicas)
  leaseMs @4 :UInt32;      # cluster.lease_ms
  shards @5 :List(ShardStatus);
  nodes @6 :List(NodeStatus);  # by node id
  bucket @7 :BucketStatus;
  compaction @8 :CompactionStatus;
  policiesDiffer @9 :Bool; # a node that answered enforces other tenant policies than this one
  log @10 :LogStatus;
}

# The log's stream as its engine reports it: the nats-server that leads its
# replicas, through which every append goes, and how the others keep up.
struct LogStatus {
  stream @0 :Text;                # MEMOS_<cluster.name>
  leader @1 :Text;                # "" while its replicas elect one
  replicas @2 :List(LogReplica);  # the others
  note @3 :Text;                  # why the figures are missing (the engine did not answer)
  previousLeader @4 :Text;        # clusterStepDown: the leader that stepped down
}

struct LogReplica {
  server @0 :Text;                # the nats-server's name
  current @1 :Bool;               # holds what the leader holds
  offline @2 :Bool;               # the leader cannot reach it
  activeMs @3 :UInt64;            # since the leader last heard from it
  lag @4 :UInt64;                 # operations it is behind the leader
}

# Log compaction (memos-cluster(7)): the newest store snapshot a node
# published, and how far each shard's log was compacted.
struct CompactionStatus {
  snapshotNode @0 :Text;     # "" no snapshot published yet
  snapshotTimeMs @1 :UInt64; # when its copy began, ms since the epoch (its node's clock)
  snapshotBytes @2 :UInt64;
  floor @3 :List(UInt64);    # per shard: the log keeps no record at or below it (0: none removed)
  note @4 :Text;             # why a figure is missing (etcd did not answer, or holds a bad key)
}

# The object store bucket that holds the cluster's KV states and adapters,
# as the log's engine says.
struct BucketStatus {
  name @0 :Text;           # MEMOS_<cluster.name>_BLOBS
  blobs @1 :UInt64;        # blobs in it
  bytes @2 :UInt64;        # what it stores, on each replica
  note @3 :Text;           # why the figures are missing (the engine did not answer)
}

struct ShardStatus {
  shard @0 :UInt32;
  owner @1 :Text;          # "" none now (a failover is under way)
  lastSequence @2 :UInt64; # the log's last record of the shard
  note @3 :Text;           # why a figure is missing (etcd or the log did not answer)
}

struct NodeStatus {
  node @0 :Text;
  answered @1 :Bool;       # false: on the roster but silent; `note` says why
  note @2 :Text;
  owner @3 :Bool;          # owns shard 0 and writes now
  position @4 :UInt64;     # the last record of the log its store holds
  behind @5 :UInt64;       # records of the log it does not hold yet
  appended @6 :UInt64;     # records it appended as owner, since it started
  applied @7 :UInt64;      # records it applied as a follower, since it started
  policies @8 :Text;       # digest of the tenant policies it enforces (64 hex digits); "" unknown
}

# ---- plugins (memos-plugin(7)) ------------------------------------------------

struct PluginInfo {
  name @0 :Text;
  kinds @1 :List(Text);
  state @2 :Text;        # "listed" (found, not loaded), "loaded" or "failed"
  detail @3 :Text;       # its version once loaded, or why it failed
  isolated @4 :Bool;
  library @5 :Text;
  manifest @6 :Text;
  capabilities @7 :List(MetaEntry);
  settings @8 :List(MetaEntry);
  health @9 :Text;       # loaded plugins: running, restarting or quarantined
}

# ---- archives ---------------------------------------------------------------
# A cube is exported and imported as a stream of chunks of the archive file
# (format in memcube/archive.h and memos(7)), so a cube larger than memory
# moves through bounded messages. The client owns the file.

struct ExportChunk {
  cube @0 :Text;
  cursor @1 :Data;       # empty for the first chunk, then the last reply's
}

struct ArchiveChunk {
  data @0 :Data;         # the next bytes of the archive
  cursor @1 :Data;       # opaque; send it back for the next chunk
  done @2 :Bool;         # the archive is complete
}

struct ImportBegin {
  name @0 :Text;         # the new cube's name; empty: the archive's
}

struct ImportChunk {
  session @0 :UInt64;
  data @1 :Data;         # the next bytes of the archive, one chunk at a time
}

# ---- generation and the activation tier -------------------------------------

# Memory-augmented generation: the cube's memories most relevant to the
# prompt (or the ones named) form a memory block ahead of the prompt. When an
# activation item holds the executor's state for a prefix of that block, it
# is restored instead of decoding (prefilling) the block again.
struct Chat {
  cube @0 :Text;
  prompt @1 :Text;
  k @2 :UInt32;          # memories retrieved; 0 = 5
  ids @3 :List(UInt64);  # use these memories instead of searching
  mode @4 :Text;         # search mode; empty: the cube's default
  # Store the block's state as an activation item when none was restored
  # for all of it (plaintext -> activation).
  activate @5 :Bool;
  noReuse @6 :Bool;      # decode the block even if a state is stored
  maxTokens @7 :UInt32;  # 0 = 128; at most executor.max_tokens
  temperature @8 :Float32;  # 0: greedy
  topK @9 :UInt32;
  topP @10 :Float32;
  seed @11 :UInt32;
  # Answer with chatPiece responses (partial set) as the answer is made:
  # prefill progress, then the text piece by piece; the ChatReply (or an
  # error) ends the request as usual.
  stream @12 :Bool;
  # LoRA adapters to answer with (at most 8); empty: the tenant policy's
  # parametric.adapters those of the cube's adapters it names.
  adapters @13 :List(AdapterUse);
  noAdapters @14 :Bool;  # the base model, whatever the policy says
  # Routing (memos(7), "Routing"), as Search's: the block is the routed
  # search's context (hits, neighbouring turns, compressed) instead of the k
  # best memories. Not with ids or mode.
  budget @15 :Text;
  route @16 :Text;
  referenceMs @17 :Int64;
  contextTokens @18 :UInt32;
  lambda @19 :Float32;
}

struct ChatPiece {
  text @0 :Text;              # the next piece of the answer (whole UTF-8 characters); may be empty
  # Prefill progress: prompt tokens decoded so far of prefillTotal (the
  # tokens not restored from a stored state). Both 0 in a text piece.
  prefillDone @1 :UInt32;
  prefillTotal @2 :UInt32;
}

struct ChatReply {
  text @0 :Text;
  memories @1 :List(UInt64);  # the memory block's items, in block order
  promptTokens @2 :UInt32;    # block and prompt
  blockTokens @3 :UInt32;     # the memory block
  reusedTokens @4 :UInt32;    # not decoded: from a stored state or the executor's context
  generatedTokens @5 :UInt32;
  # "none" (no state matched), "restored", "stored" (made by this request),
  # "restored+stored", or "rejected: why" (a stored state could not be used).
  activationStatus @6 :Text;
  activation @7 :UInt64;      # the activation item restored or stored; 0: none
  restoreMs @8 :Float64;      # reading and restoring the state
  prefillMs @9 :Float64;      # decoding the prompt tokens not restored
  firstTokenMs @10 :Float64;  # in the executor, from the call to the first token
  totalMs @11 :Float64;       # in memosd, from the request to the reply
  finish @12 :Text;           # "length", "eog" or "prompt"
  resident @13 :Bool;         # the state was already in the executor's memory
  format @14 :Text;           # the prompt's layout: "chat template" (the model's) or "plain"
  # About how much prefill the restored state saved: the time its block's
  # reused tokens took to decode when the state was made, less restoreMs;
  # 0 when nothing was restored or the state's prefill time is unknown.
  savedMs @15 :Float64;
  # Of reusedTokens, those the executor's context still held from this
  # tenant's earlier chats (executor.prompt_cache): nothing was read.
  cachedTokens @16 :UInt32;
  adapters @17 :List(Text);   # "NAME*SCALE" of each adapter the answer ran with
  modules @18 :List(ModuleRun);  # a routed chat's modules, in pipeline order
  router @19 :RouterChoice;      # a chat with budget "auto": how its tiers were chosen
}

# Prefills a memory block and stores its state (plaintext -> activation).
struct KvPrefill {
  cube @0 :Text;
  ids @1 :List(UInt64);  # these memories
  top @2 :UInt32;        # or the N most read ones (access statistics)
}

struct Activation {
  id @0 :UInt64;
  cube @1 :Text;
  model @2 :Text;
  modelHash @3 :Text;
  kvType @4 :Text;
  tokens @5 :UInt32;          # the prefix it covers
  bytes @6 :UInt64;
  sources @7 :List(UInt64);   # the memories of its block
  createdAtMs @8 :Int64;
  lastUsedMs @9 :Int64;
  uses @10 :UInt64;
  prefillMs @11 :Float64;     # kvPrefill: what making it took
}

struct KvStats {
  model @0 :Text;             # the executor's; empty: no executor
  modelHash @1 :Text;
  kvType @2 :Text;
  items @3 :UInt64;           # the tenant's activation items
  bytes @4 :UInt64;
  tenantMaxBytes @5 :UInt64;
  residentStates @6 :UInt32;  # in the executor's memory (all tenants)
  residentBytes @7 :UInt64;
  residentBudgetBytes @8 :UInt64;
  residentHits @9 :UInt64;
  residentMisses @10 :UInt64;
  rejectedStates @11 :UInt64;
  contextTokens @12 :UInt32;
  chunkTokens @13 :UInt32;
  promptsHeld @14 :UInt32;    # prompts the executor's context keeps (all tenants)
  promptHits @15 :UInt64;     # calls that started from one
  promptHitTokens @16 :UInt64; # prompt tokens those calls did not decode
  adaptersLoaded @17 :UInt32;  # LoRA adapters the executor keeps loaded (all tenants)
  adapterBytes @18 :UInt64;
  adapterBudgetBytes @19 :UInt64;  # executor.max_adapter_mb
  adapterLoads @20 :UInt64;    # loads since it started (a loaded one's use loads nothing)
  # Where the executor runs (executor.device) and where its resident states live:
  device @21 :Text;            # "CPU" or the GPU's name ("CUDA0")
  deviceDescription @22 :Text; # e.g. "NVIDIA H200"
  gpuLayers @23 :UInt32;       # of `layers`, in the GPU's memory
  layers @24 :UInt32;
  deviceFreeBytes @25 :UInt64; # the device's memory (the host's on the CPU)
  deviceTotalBytes @26 :UInt64;
  residentPinnedStates @27 :UInt32;  # resident states in page-locked host memory (a GPU's DMA source)
  residentPinnedBytes @28 :UInt64;   # the others are in ordinary memory
  pinnedBytes @29 :UInt64;     # page-locked memory the executor holds
  pinnedBudgetBytes @30 :UInt64;  # activation.pinned_mb; 0 on the CPU
  # Resident states in the executor's KV cache on its device (activation.gpu_max_mb):
  deviceBudgetBytes @31 :UInt64;  # the cells they may take, in bytes (activation.gpu_max_mb)
  deviceStates @32 :UInt32;       # held now
  deviceStateBytes @33 :UInt64;   # the cells they take, in bytes
  deviceStateHits @34 :UInt64;    # restores that shared a held state's cells (no copy)
}

# A tenant's policy as memosd enforces it (memos-policy(5)).
struct PolicyInfo {
  tenant @0 :Text;      # the tenant's name: its policy's, else the user's (or "uid:N")
  file @1 :Text;        # the policy file; "" for the built-in default
  text @2 :Text;        # the effective policy, as TOML
  folder @3 :Text;      # the folder the policies came from; "" none (built-in)
  tenants @4 :UInt32;   # how many tenants that folder names
  admin @5 :Bool;       # whether the caller is an administrator
  storedUnder @6 :UInt32;  # the uid the tenant's memory is stored under
}

# What a tenant holds, as its bounds count it (memos-policy(5)).
struct TenantUsage {
  tenant @0 :Text;
  storedUnder @1 :UInt32;      # the uid its memory is stored under
  cubes @2 :UInt64;
  items @3 :UInt64;            # live items (archived and frozen included)
  textBytes @4 :UInt64;        # of those items' texts
  activationItems @5 :UInt64;
  activationBytes @6 :UInt64;
  bounds @7 :List(UsageBound); # the bounds its policy sets, in memos-policy(5)'s order
  paramBytes @8 :UInt64;       # of its adapters' files (parametric items not removed)
  routerTokens @9 :UInt64;     # context tokens of its routed queries today (UTC)
}

struct UsageBound {
  name @0 :Text;     # the policy key ("max_items")
  limit @1 :UInt64;  # in the key's unit (MiB for _mb keys)
  used @2 :UInt64;   # in the same unit, rounded up
}

# ---- scheduler (memos(7), "Scheduling") ---------------------------------------

# One scheduler pass: what it looked at and what it moved.
struct SchedPass {
  atMs @0 :Int64;            # when it started; 0: none yet
  tookMs @1 :Float64;
  cubes @2 :UInt32;
  workingSets @3 :UInt32;    # cubes with a working set after it (all of the pass's scope)
  promoted @4 :UInt32;       # memories that joined a working set
  demoted @5 :UInt32;        # memories that left one
  archived @6 :UInt32;
  prefillsQueued @7 :UInt32; # working-set states queued for background prefill
  distillations @8 :UInt32;  # jobs started by parametric.distill_after
}

# A cube's working set: the memories its owner's chats lay first.
struct CubeSchedule {
  cube @0 :Text;
  generation @1 :UInt64;       # +1 each time its members change
  items @2 :List(UInt64);      # in the set's stable order
  estimatedTokens @3 :UInt32;  # as selected (about 4 bytes a token)
  blockTokens @4 :UInt32;      # of the set's memory block, once tokenized; 0: not yet
  state @5 :UInt64;            # the activation item holding its block's state; 0: none yet
  prefillPending @6 :Bool;     # its prefill is queued on the executor lane
  chats @7 :UInt64;            # chats over the cube since memosd started
  restores @8 :UInt64;         # of those, how many restored a stored state
  promptTokens @9 :UInt64;     # their prompts' tokens
  reusedTokens @10 :UInt64;    # of those, the tokens restored rather than decoded
  updatedAtMs @11 :Int64;      # when its members last changed
}

struct SchedStatus {
  enabled @0 :Bool;              # the caller's scheduler.enabled
  intervalS @1 :UInt32;          # between passes
  passes @2 :UInt64;             # since memosd started
  lastPass @3 :SchedPass;        # the last timed pass over every tenant
  backgroundPending @4 :UInt32;  # prefills queued on the executor lane (all tenants)
  foregroundPending @5 :UInt32;  # client chats and prefills queued there
  cubes @6 :List(CubeSchedule);  # by cube id
  settings @7 :Text;             # the caller's effective settings, as TOML ([scheduler])
}

struct SchedLogQuery {
  cube @0 :Text;   # "": every cube of the caller's
  max @1 :UInt32;  # the last N decisions; 0: 100
}

# One decision and its reason.
struct SchedDecision {
  atMs @0 :Int64;
  cube @1 :Text;
  item @2 :UInt64;   # a memory, or an activation item (evicted; promoted: a prefilled state)
  action @3 :Text;   # promoted, demoted, evicted, archived or restored
  reason @4 :Text;
}

# What the scheduler knows of one memory (memctl explain).
struct Explanation {
  item @0 :Item;                 # the head, with its read counts
  strength @1 :Float64;          # S: 1 plus what each recall added
  recalls @2 :Float64;           # weighted (a search hit counts search_recall_weight)
  lastRecallMs @3 :Int64;        # 0: never recalled (retention counts from its creation)
  retention @4 :Float64;         # R = exp(-t / S), now
  score @5 :Float64;             # R times importance: its claim to the working set
  timeUnit @6 :Text;             # of t: seconds, minutes, hours or days
  inWorkingSet @7 :Bool;
  position @8 :UInt32;           # its place in the set (0: first)
  workingSetState @9 :UInt64;    # the set's activation item; 0: none
  activations @10 :List(UInt64); # the cube's activation items made from it
  archiveAtMs @11 :Int64;        # with forgetting = "archive": when it goes if not recalled; 0: never
  archivedByScheduler @12 :Bool; # archived by the scheduler (a read brings it back)
}
