# plugin.capnp — what memosd and its plugins say to each other.
#
# Every create() receives a PluginConfig; every call() a PluginRequest and
# every complete() a PluginResponse (memos/plugin.h). The same bytes cross a
# socketpair when a plugin runs isolated in memos-plugin-host.
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
    route @5 :RouteRequest;       # router -> route
    execute @6 :Data;             # executor: its own schema, to come
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

struct Document {
  id @0 :UInt64;
  text @1 :Text;
  vector @2 :List(Float32);       # when the retriever works on embeddings
  tags @3 :List(Text);
  validFromMs @4 :Int64;
  validToMs @5 :Int64;            # 0: open
  recordedAtMs @6 :Int64;
  importance @7 :Float32;
  archived @8 :Bool;
}

struct IndexRequest {
  collection @0 :UInt64;          # the cube
  documents @1 :List(Document);   # added or replaced
}

struct RemoveRequest {
  collection @0 :UInt64;
  ids @1 :List(UInt64);
}

struct Filter {
  allTags @0 :List(Text);
  anyTags @1 :List(Text);
  asOfMs @2 :Int64;               # 0: now
  includeArchived @3 :Bool;
  recordedFromMs @4 :Int64;
  recordedToMs @5 :Int64;         # 0: open
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

# ---- router -------------------------------------------------------------------

struct RouteRequest {
  prompt @0 :Text;
  tokenBudget @1 :UInt32;
  candidates @2 :List(Text);      # targets the router may choose from
}

struct Route {
  target @0 :Text;
  reason @1 :Text;
}
