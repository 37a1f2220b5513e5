# plugin.capnp — what memosd and its plugins say to each other.
#
# Every create() receives a PluginConfig; every call() a PluginRequest and
# every complete() a PluginResponse (memos/plugin.h); a call may send
# PluginPartial messages through partial() before it completes (ABI minor 1).
# Routers (route, RouterCapabilities) came with minor 2; a retriever's
# snapshot as one file (exportSnapshot, importSnapshot) with minor 3.
# The same bytes cross a socketpair when a plugin runs isolated in
# memos-plugin-host.
#
# Compatibility: fields and union members are only ever added at the end.
# A plugin that receives a request kind it does not know answers with an
# error of code `unsupported`.

@0xd1f1b3e5a8c6e2f7;

$import "/capnp/c++.capnp".namespace("memos::plugin_wire");

struct Setting {
  key @0 :Text;
  value @1 :Text;
}

# Given to create(): the [settings] of the plugin's manifest, then those of
# the daemon's configuration for it.
struct PluginConfig {
  settings @0 :List(Setting);
}

struct PluginRequest {
  union {
    describe @0 :Void;            # -> capabilities
    embed @1 :EmbedRequest;       # embedder -> embeddings
    index @2 :IndexRequest;       # retriever -> done
    remove @3 :RemoveRequest;     # retriever -> done
    search @4 :SearchRequest;     # retriever -> hits
    route @5 :RouteRequest;       # router -> route (ABI minor 2)
    execute @6 :Data;             # unused (executors answer tokenize, prefill, generate)
    open @7 :OpenRequest;         # retriever -> collection (loads its snapshot)
    save @8 :UInt64;              # retriever: snapshot a collection -> collection
    drop @9 :UInt64;              # retriever: forget a collection and its files -> done
    fuse @10 :FuseRequest;        # fuser (hybrid) -> hits
    tokenize @11 :TokenizeRequest;  # executor -> tokens
    prefill @12 :PrefillRequest;    # executor -> prefilled
    generate @13 :GenerateRequest;  # executor -> generated
    executorStatus @14 :Void;       # executor -> executorStatus
    chatTokens @15 :ChatTokensRequest;  # executor -> chatTokens
    checkAdapter @16 :AdapterRef;   # executor -> adapterFacts
    controlVector @17 :ControlVectorRequest;  # executor -> controlVector
    distillBegin @18 :DistillRequest;  # executor -> distillation (its id, 0 steps done)
    distillStep @19 :UInt64;           # executor: one step of distillation N -> distillation
    distillFinish @20 :DistillFinish;  # executor: a done one's adapter -> adapterFile
    distillCancel @21 :UInt64;         # executor: forget distillation N -> done
    score @22 :ScoreRequest;           # executor -> textScore
    exportSnapshot @23 :SnapshotFile;  # retriever: a collection as one file -> collection (minor 3)
    importSnapshot @24 :SnapshotFile;  # retriever: such a file as a closed collection's snapshot -> collection (minor 3)
  }
}

struct PluginResponse {
  union {
    error @0 :PluginError;
    capabilities @1 :Capabilities;
    embeddings @2 :Embeddings;
    done @3 :Void;
    hits @4 :List(Hit);
    route @5 :Route;
    executed @6 :Data;
    collection @7 :CollectionState;
    tokens @8 :List(Int32);
    prefilled @9 :Prefilled;
    generated @10 :Generated;
    executorStatus @11 :ExecutorStatus;
    chatTokens @12 :ChatTokens;
    adapterFacts @13 :AdapterFacts;
    controlVector @14 :Data;      # a control vector's GGUF
    distillation @15 :Distillation;
    adapterFile @16 :Data;        # a distilled LoRA adapter's GGUF
    textScore @17 :TextScore;
  }
}

enum ErrorCode {
  internal @0;
  invalid @1;
  unsupported @2;
  resource @3;
  cancelled @4;
  busy @5;
}

struct PluginError {
  code @0 :ErrorCode;
  message @1 :Text;
}

struct Capabilities {
  kinds @0 :UInt32;               # MEMOS_KIND_* bits
  embedder @1 :EmbedderCapabilities;
  retriever @2 :RetrieverCapabilities;
  executor @3 :ExecutorCapabilities;
  router @4 :RouterCapabilities;
}

struct EmbedderCapabilities {
  model @0 :Text;                 # e.g. "hash-v1"
  dimension @1 :UInt32;
  maxBatch @2 :UInt32;            # texts per embed call; 0: no limit
  normalized @3 :Bool;            # vectors have unit length
}

struct RetrieverCapabilities {
  modes @0 :List(Text);           # e.g. "dense", "lexical"
  filters @1 :List(Text);         # the Filter fields it honours
}

# ---- embedder -----------------------------------------------------------------

struct EmbedRequest {
  texts @0 :List(Text);
  dimension @1 :UInt32;           # 0: the plugin's own; embedders that can vary it honour it
}

struct Embeddings {
  dimension @0 :UInt32;
  values @1 :List(Float32);       # texts x dimension, row-major
}

# ---- retriever ----------------------------------------------------------------

# A retriever keeps one collection per cube. Everything it holds is derived
# from memosd's store: memosd sends every change in commit order, each
# tagged with the cube version it brings the collection to, and asks for a
# snapshot from time to time. At start memosd opens each collection; if the
# snapshot's version is not the cube's head version (missing, stale, torn,
# corrupt) memosd drops the collection and sends every live item again.

struct Document {
  id @0 :UInt64;
  text @1 :Text;
  vector @2 :List(Float32);       # when the retriever works on embeddings
  tags @3 :List(Text);
  validFromMs @4 :Int64;
  validToMs @5 :Int64;            # 0: open
  recordedAtMs @6 :Int64;
  importance @7 :Float32;
  archived @8 :Bool;              # state == "archived" (kept for older plugins)
  meta @9 :List(Setting);         # the item's key/value metadata
  tier @10 :Text;                 # "plaintext", "activation" or "parametric"
  state @11 :Text;                # "active", "archived" or "frozen" (deleted items are removed)
  expiresAtMs @12 :Int64;         # 0: never
  # Only the attributes changed (e.g. a superseded fact's validToMs): a
  # dense retriever keeps the stored vector; `text` is still the item's text.
  attributesOnly @13 :Bool;
}

struct IndexRequest {
  collection @0 :UInt64;          # the cube
  documents @1 :List(Document);   # added or replaced
  version @2 :UInt64;             # the cube version the collection reaches
  # memosd is stopping: take the documents without waiting for background
  # work to make room (no backpressure); a save follows, which keeps what
  # is still buffered, and the next start picks it up.
  noWait @3 :Bool;
}

struct RemoveRequest {
  collection @0 :UInt64;
  ids @1 :List(UInt64);           # ids not in the collection are ignored
  version @2 :UInt64;             # the cube version the collection reaches
}

# Opens (or creates) a collection. A retriever with a snapshot of it on disk
# loads it; one without starts empty at version 0. Opening a collection that
# is already open changes nothing and answers its current state.
struct OpenRequest {
  collection @0 :UInt64;
  dimension @1 :UInt32;           # vector length (dense retrievers)
  language @2 :Text;              # stemming language (lexical), e.g. "english"
  # How many documents are about to be sent (a rebuild from the store): a
  # dense retriever may pick its index kind for that size at once.
  expectedDocuments @3 :UInt64;
}

# A collection's snapshot as one self-contained file, so that memosd can
# hand it to another node (docs/scale-out.md, "Index snapshots"); the other
# node's retriever of the same plugin installs it and opens it as if it had
# saved it itself. The format is the plugin's own: memosd only moves the
# bytes.
#
# exportSnapshot: the collection must be open. The plugin saves it (as `save`
# does: everything it holds, at the version it covers) and writes the file
# at `path` whole before it answers (a crash may leave `path` absent or
# stale, never half written); it answers the state the file holds. Errors:
# invalid (not open, dropped), unsupported (no state_dir), resource.
#
# importSnapshot: the collection must not be open here (memosd drops it
# first). The plugin checks the file as it checks its own snapshots, and a
# file it would not load (truncated, corrupt, another collection, a format
# it does not read) is refused with invalid, changing nothing. Otherwise the
# file becomes the collection's snapshot, durably, replacing any it had
# (the plugin may move it away from `path`), and it answers the state the
# file holds; the next `open` loads it. Errors: invalid, unsupported,
# resource.
#
# `path` is absolute and lies in the plugin's state_dir, in a folder memosd
# made for the purpose (<state_dir>/transfer/), so an isolated plugin can
# reach it.
struct SnapshotFile {
  collection @0 :UInt64;
  path @1 :Text;
}

struct CollectionState {
  collection @0 :UInt64;
  version @1 :UInt64;             # the cube version its contents cover
  documents @2 :UInt64;           # documents held (tombstones not counted)
  detail @3 :Text;                # e.g. "hnsw, 3 tombstones" or why a snapshot was refused
}

# What a search may return. Every field is a further condition; a default
# Filter admits active items valid and unexpired at asOfMs / nowMs.
struct Filter {
  allTags @0 :List(Text);         # items carry every one of these
  anyTags @1 :List(Text);         # items carry at least one (empty: no condition)
  asOfMs @2 :Int64;               # facts valid at this time (validFrom <= t < validTo)
  includeArchived @3 :Bool;       # archived items too (same as states += "archived")
  recordedFromMs @4 :Int64;       # recordedAt >= this (0: no bound)
  recordedToMs @5 :Int64;         # recordedAt < this (0: no bound)
  nowMs @6 :Int64;                # for expiry: expiresAt > now
  meta @7 :List(Setting);         # metadata equality, every entry must match
  tiers @8 :List(Text);           # empty: any tier
  states @9 :List(Text);          # empty: "active" (plus "archived" with includeArchived)
  validFromMs @10 :Int64;         # validity overlaps [validFromMs, validToMs) (0: no bound)
  validToMs @11 :Int64;
}

struct SearchRequest {
  collection @0 :UInt64;
  query @1 :Text;
  vector @2 :List(Float32);
  k @3 :UInt32;
  filter @4 :Filter;
}

struct Hit {
  id @0 :UInt64;
  score @1 :Float32;
}

# ---- fuser (hybrid) -------------------------------------------------------------

# Fuses the ranked lists of several retrievers into one.
struct FuseRequest {
  k @0 :UInt32;
  lists @1 :List(RankedList);
  candidates @2 :List(Candidate); # every id in any list, with what weighting needs
  nowMs @3 :Int64;
  rrfK @4 :Float32;               # RRF constant; 0: the fuser's default (60)
  recencyWeight @5 :Float32;      # 0: off
  recencyHalfLifeMs @6 :Int64;    # 0: the fuser's default (30 days)
  importanceWeight @7 :Float32;   # 0: off
  mmrLambda @8 :Float32;          # 0 or 1: no diversification; else relevance share
  retentionWeight @9 :Float32;    # 0: off; adds weight x Candidate.retention
}

struct RankedList {
  name @0 :Text;                  # e.g. "dense"
  weight @1 :Float32;             # 0: 1
  hits @2 :List(Hit);             # best first
}

struct Candidate {
  id @0 :UInt64;
  recordedAtMs @1 :Int64;
  importance @2 :Float32;
  vector @3 :List(Float32);       # for MMR; may be empty
  retention @4 :Float32;          # 0..1: R = exp(-t / S), the memory's (memos(7), "Scheduling")
}

# ---- executor -------------------------------------------------------------------

# An executor runs one model. What it describes is what an activation (KV
# state) depends on: memosd keys stored states by these fields, so a state
# made by another model, adapter set, KV type, layout or format is never
# offered to it (and the executor checks the state's own header as well).
struct ExecutorCapabilities {
  model @0 :Text;                 # the model's name (GGUF general.name, else the file name)
  modelHash @1 :Text;             # hex SHA-256 of the GGUF file
  adapters @2 :Text;              # the set it always runs with: "" (a call names its own, GenerateRequest.adapters)
  kvType @3 :Text;                # KV cache element type, e.g. "f16"
  layout @4 :Text;                # attention layout and the llama.cpp build, e.g. "llama.cpp de3ff81; layers 24; k 128; v 128; v-trans"
  stateFormat @5 :UInt32;         # version of the executor's state blob format
  contextTokens @6 :UInt32;       # the context size: prompts longer than this are refused
  batchTokens @7 :UInt32;         # tokens per decode batch (the split restore must match)
  vocabulary @8 :UInt32;          # logits per position
  # Where it runs (the executor's `device` setting, issue 22):
  device @9 :Text;                # "CPU", or llama.cpp's name of the GPU ("CUDA0")
  deviceDescription @10 :Text;    # e.g. "NVIDIA H200"
  deviceNote @11 :Text;           # device "auto" without a GPU: "no GPU, using CPU: why"
  gpuLayers @12 :UInt32;          # of `layers`, those in the GPU's memory (0 on the CPU)
  layers @13 :UInt32;
  deviceMemoryBytes @14 :UInt64;  # the device's total memory (the host's on the CPU)
}

struct TokenizeRequest {
  text @0 :Text;
  addSpecial @1 :Bool;            # add the model's BOS (start of a prompt)
}

# A memory block (the system turn) and a question (the user's turn, then the
# start of the assistant's) laid out in the model's chat template and
# tokenized apart, so that the block's tokens are the same whatever the
# question. The template's own text is tokenized with its special tokens;
# `system` and `user` without, so text from users cannot forge them. A model
# without a template the executor can apply gets a plain layout instead.
struct ChatTokensRequest {
  system @0 :Text;
  user @1 :Text;
}

struct ChatTokens {
  block @0 :List(Int32);
  question @1 :List(Int32);
  format @2 :Text;                # "chat template" or "plain"
}

# Prefills `tokens` from an empty sequence and exports the state.
struct PrefillRequest {
  tokens @0 :List(Int32);
  cacheScope @1 :Data;            # as GenerateRequest's: the prompt is kept for it
  adapters @2 :List(AdapterRef);  # as GenerateRequest's
}

# A LoRA adapter (GGUF, general.type = adapter) in memosd's blob store, read
# and checked against its digest by the executor, which keeps recently used
# adapters loaded within a budget (executor.max_adapter_mb).
struct AdapterRef {
  path @0 :Text;                  # absolute path of the blob file
  digest @1 :Data;                # its SHA-256 (the blob's name)
  size @2 :UInt64;
  scale @3 :Float32;              # the adapter's change times this; 1: as trained
  kind @4 :Text;                  # "lora" ("" reads as it) or "cvec" (a control vector)
}

# Derives a control vector from two sets of texts (memories): the per-layer
# mean hidden state of `positive` less that of `negative` -> controlVector
# (its GGUF, general.architecture = controlvector).
struct ControlVectorRequest {
  positive @0 :List(Text);
  negative @1 :List(Text);
}

# Distills texts (memories) into a LoRA adapter of the executor's model: it
# fine-tunes some of a copy's weight matrices on them (llama.cpp's training
# API), `steps` steps of one window each, then factors each matrix's change
# at `rank` (truncated SVD), one step a matrix. One distillation at a time;
# each step is one call, so other calls wait at most a step.
struct DistillRequest {
  texts @0 :List(Text);
  rank @1 :UInt32;                # 0: 8
  steps @2 :UInt32;               # training steps; 0: 40
  learningRate @3 :Float32;       # AdamW's; 0: 1e-3
}

struct Distillation {
  id @0 :UInt64;
  done @1 :UInt32;                # steps run
  total @2 :UInt32;               # training steps + one a matrix
  loss @3 :Float32;               # the last training step's, per token
  tokens @4 :UInt32;              # of the texts, all together
}

struct DistillFinish {
  id @0 :UInt64;
  name @1 :Text;                  # the adapter's general.name
}

# How well the model, with `adapters`, predicts each text (its tokens after
# the first): summed negative log-likelihood, tokens, and how many of them
# the most likely next token gets right.
struct ScoreRequest {
  texts @0 :List(Text);
  adapters @1 :List(AdapterRef);
}

struct TextScore {
  nll @0 :Float64;
  tokens @1 :UInt64;
  correct @2 :UInt64;
}

# What checkAdapter found: the adapter fits this executor's model (else the
# call fails `invalid`, saying which of architecture, base model, tensor
# names or shapes, or values does not).
struct AdapterFacts {
  architecture @0 :Text;          # general.architecture, the model's
  baseModel @1 :Text;             # the model it is bound to: this executor's model hash
  tensors @2 :UInt32;             # adapted matrices (lora_a/lora_b pairs)
  rank @3 :UInt32;                # the largest rank of its pairs
  alpha @4 :Float32;              # adapter.lora.alpha (0: none given, llama.cpp then uses 1)
  name @5 :Text;                  # general.name, if any
  kind @6 :Text;                  # "lora" or "cvec" (tensors: its layers; rank 0)
}

struct Prefilled {
  state @0 :Data;                 # the state blob (header + llama.cpp sequence state)
  tokens @1 :UInt32;              # tokens it covers
  prefillMs @2 :Float64;
}

# A stored state the executor may start from: a blob in memosd's blob store,
# read (and checked against its digest) by the executor itself, which keeps
# recently used states resident in its own memory within a budget.
struct StoredState {
  path @0 :Text;                  # absolute path of the blob file
  digest @1 :Data;                # its SHA-256 (the blob's name)
  size @2 :UInt64;
  # What keeping the state is worth, as memosd ranks its stored states
  # (memos(7), "Scheduling": hits per hour x prefill ms saved / bytes; 0 for
  # every state under activation.eviction = "lru"). An executor that keeps
  # states resident drops the least useful first, the least recently used
  # among equals.
  utility @3 :Float64;
}

struct Sampling {
  temperature @0 :Float32;        # 0: greedy
  topK @1 :UInt32;                # 0: off
  topP @2 :Float32;               # 0 or 1: off
  seed @3 :UInt32;
}

# Decodes `tokens` (the whole prompt) and generates up to maxTokens. With a
# state, the executor restores it, keeps the longest prefix it shares with
# `tokens`, drops the positions past it and decodes the rest; a state that
# does not fit (wrong header, corrupt, refused by llama.cpp) is ignored and
# the prompt is decoded in full, with stateStatus saying why.
struct GenerateRequest {
  tokens @0 :List(Int32);
  state @1 :StoredState;          # path "" : none
  maxTokens @2 :UInt32;           # 0: none (prompt only; logits still come back if asked)
  sampling @3 :Sampling;
  # Also export the state after the first exportTokens tokens of the prompt
  # (a memory block, to be stored as an activation); 0: none.
  exportTokens @4 :UInt32;
  wantLogits @5 :Bool;            # return the logits of the last prompt position
  # Split the decode at this position (as if the first splitTokens tokens
  # came from a state), so that a full recomputation batches exactly like a
  # restore would; 0: no split beyond batchTokens.
  splitTokens @6 :UInt32;
  # Send PluginPartial messages as the call goes: prefill progress after
  # each batch and the text of each generated piece. The pieces, joined,
  # are exactly Generated.text. Ignored by a host of ABI minor 0.
  stream @7 :Bool;
  # Who may reuse this prompt: an executor may keep its cells in the
  # context, and a later call of the same scope starts from the longest
  # prefix it kept (a state is then read only if it covers more). memosd
  # sends the tenant: across tenants a hit's speed would tell one what
  # another asked. Empty: nothing kept or reused, the call starts from an
  # empty context. Ignored by executors without such a cache.
  cacheScope @8 :Data;
  # LoRA adapters to run with, at their scales (memos/adapter_set.h); empty:
  # the base model. Part of what a state depends on: a state made under
  # another set (its header says) is refused, and recent prompts are kept
  # per scope and set.
  adapters @9 :List(AdapterRef);
}

struct Generated {
  text @0 :Text;
  tokens @1 :List(Int32);         # generated
  promptTokens @2 :UInt32;
  reusedTokens @3 :UInt32;        # prompt tokens not decoded (from the state or the context)
  # "none", "restored" (the state's prefix is in the context: read from it,
  # or already there from an earlier call of the scope), or "rejected: why"
  stateStatus @4 :Text;
  restoreMs @5 :Float64;          # reading (if not resident), checking and restoring the state
  prefillMs @6 :Float64;          # decoding the prompt tokens not taken from the state
  firstTokenMs @7 :Float64;       # from the request to the first generated token
  totalMs @8 :Float64;
  finish @9 :Text;                # "length", "eog" or "prompt"
  logits @10 :List(Float32);      # when asked
  exported @11 :Data;             # the state after exportTokens, when asked
  stateResident @12 :Bool;        # the state was already in memory
  # Decoding the first exportTokens tokens (the exported state's own
  # prefill, restored tokens excluded); 0 when nothing was exported.
  exportPrefillMs @13 :Float64;
  # Of reusedTokens, those the context still held from an earlier call of
  # the scope (GenerateRequest.cacheScope): nothing was read for them.
  cachedTokens @14 :UInt32;
}

# What a call reports before it completes (memos_host_api.partial): an
# executor's generate with `stream` set sends prefill progress and the
# generated text piece by piece. Partials of one call arrive in order, all
# before its PluginResponse; a host may drop them when nobody listens.
struct PluginPartial {
  union {
    text @0 :Text;                # the next generated text: whole UTF-8 characters
    prefill @1 :PrefillProgress;
  }
}

struct PrefillProgress {
  done @0 :UInt32;                # prompt tokens decoded so far (restored ones excluded)
  total @1 :UInt32;               # prompt tokens this call decodes
}

struct ExecutorStatus {
  residentStates @0 :UInt32;
  residentBytes @1 :UInt64;
  residentBudgetBytes @2 :UInt64;
  residentHits @3 :UInt64;
  residentMisses @4 :UInt64;
  rejectedStates @5 :UInt64;
  promptsHeld @6 :UInt32;         # prompts kept in the context for their scope
  promptHits @7 :UInt64;          # calls that started from one
  promptHitTokens @8 :UInt64;     # prompt tokens those calls did not decode
  adaptersLoaded @9 :UInt32;      # LoRA adapters kept loaded
  adapterBytes @10 :UInt64;       # their file sizes, summed
  adapterBudgetBytes @11 :UInt64; # executor.max_adapter_mb
  adapterLoads @12 :UInt64;       # loads (misses); a loaded adapter's use loads nothing
  deviceFreeBytes @13 :UInt64;    # the device's free memory, as of the last call's end
  deviceTotalBytes @14 :UInt64;
  residentPinnedStates @15 :UInt32;  # of the resident states, those in page-locked memory
  residentPinnedBytes @16 :UInt64;
  pinnedBytes @17 :UInt64;        # page-locked memory the staging pool holds (in use and kept)
  pinnedBudgetBytes @18 :UInt64;  # its bound; 0 on the CPU, where nothing is pinned
  stagedOrdinary @19 :UInt64;     # blobs a GPU executor staged in ordinary memory (past the bound)
  # Resident states in the KV cache's own sequences on the device (device_state_bytes):
  deviceBudgetBytes @20 :UInt64;  # the cells they may take, in bytes
  deviceStates @21 :UInt32;       # held now
  deviceStateBytes @22 :UInt64;   # the cells they take, in bytes
  deviceStateHits @23 :UInt64;    # restores that shared a held state's cells
}

# ---- router ---------------------------------------------------------------------

# A router (ABI minor 2) chooses the tier each query-time memory module runs
# at for one query (memos(7), "Routing"): memosd sends what it knows of the
# query before any costly module runs, and the tiers it can run; the router
# answers a tier per module. memosd checks the answer (every module once,
# each tier one it offered) and, when the router fails or answers amiss,
# routes at the default tier instead. The router never sees memories.

struct RouterCapabilities {
  model @0 :Text;                 # what the router runs, e.g. "linear-v1, 24 routes"
  # The query embedding it reads: its length (0: none is sent) and the
  # embedder model it was trained with (memosd refuses a router whose
  # embedder is not the one it runs).
  dimension @1 :UInt32;
  embedder @2 :Text;
  features @3 :List(Text);        # the features it reads (RouteRequest.features)
}

struct Feature {
  name @0 :Text;                  # e.g. "low_margin"
  value @1 :Float32;
}

struct ModuleTiers {
  module @0 :Text;                # "retrieve", "temporal", "expand", "compress"
  tiers @1 :List(Text);           # the tiers memosd can run it at, cheapest first
}

struct RouteRequest {
  query @0 :Text;                 # the question
  # Context tokens the tenant may still spend today (policy [router]
  # tokens_per_day); 0: no limit. A spent budget is never sent: memosd
  # routes at low itself.
  tokenBudget @1 :UInt32;
  candidates @2 :List(Text);      # unused (a draft of minor 1)
  # Cheap features of the query and of a low-tier retrieval already run:
  # names as in memos(7), "Routing" (a router ignores names it does not know
  # and reads 0 for those it misses).
  features @3 :List(Feature);
  vector @4 :List(Float32);       # the query's embedding (RouterCapabilities.dimension)
  tiers @5 :List(ModuleTiers);    # what memosd can run, per module
  lambda @6 :Float32;             # the price of cost against quality (the tenant's)
  msBudget @7 :Float32;           # milliseconds a query may take (policy); 0: no limit
}

struct ModuleTier {
  module @0 :Text;
  tier @1 :Text;
}

# One route the router weighed: its predicted quality (evidence recall of
# the context), normalised cost (0..1) and score (quality - lambda x cost).
struct RouteScore {
  route @0 :Text;                 # "retrieve=mid,temporal=mid,expand=low,compress=mid"
  quality @1 :Float32;
  cost @2 :Float32;
  score @3 :Float32;
}

struct Route {
  target @0 :Text;                # unused (a draft of minor 1)
  reason @1 :Text;                # one line: why these tiers
  tiers @2 :List(ModuleTier);     # one per module
  scores @3 :List(RouteScore);    # the routes weighed, best first (at most 8)
}
