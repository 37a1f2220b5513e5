# records.capnp — the on-disk encoding of LMDB values in memcube.
#
# This is the storage format, deliberately separate from the wire protocol
# (ipc/schema/memos.capnp) so that either can evolve alone. Fields are only
# added at the end. Every value is stored behind an 8-byte header (magic and
# a CRC-32C of the message, see record_codec.h), checked on every read.

@0xb1d3a47b0e2c5f91;

$import "/capnp/c++.capnp".namespace("memos::records");

struct MetaEntry {
  key @0 :Text;
  value @1 :Text;
}

enum Tier {
  plaintext @0;
  activation @1;
  parametric @2;
}

enum State {
  active @0;
  archived @1;
  frozen @2;
  deleted @3;   # a tombstone version
}

struct ItemRecord {
  id @0 :UInt64;
  version @1 :UInt32;
  text @2 :Text;
  tags @3 :List(Text);
  meta @4 :List(MetaEntry);
  createdAtMs @5 :Int64;    # recorded time of version 1
  recordedAtMs @6 :Int64;   # recorded time of this version (transaction time)
  tier @7 :Tier;
  state @8 :State;
  importance @9 :Float32;
  expiresAtMs @10 :Int64;   # 0: never
  validFromMs @11 :Int64;   # when the fact starts to hold (valid time)
  validToMs @12 :Int64;     # when it stops holding; 0: still holds
  writerUid @13 :UInt32;    # provenance: the tenant that wrote this version
  sessionId @14 :Text;      # provenance: the writer's session, if it said
  sources @15 :List(UInt64);  # provenance: items this one was derived from
  cubeVersion @16 :UInt64;  # the cube's head version when this was written
  param @17 :ParamRecord;   # set on parametric items (tier parametric) only
}

# A parametric item's adapter (store.h Parametric); its GGUF is a blob.
struct ParamRecord {
  kind @0 :Text;            # "lora"
  name @1 :Text;
  blob @2 :Data;            # SHA-256 of the GGUF in the blob store
  size @3 :UInt64;
  scale @4 :Float32;
  baseModel @5 :Text;       # hex SHA-256 of the model it fits
  architecture @6 :Text;
  tensors @7 :UInt32;
  rank @8 :UInt32;
  alpha @9 :Float32;
  origin @10 :Text;
}

struct CubeRecord {
  id @0 :UInt64;
  name @1 :Text;
  ownerUid @2 :UInt32;
  createdAtMs @3 :Int64;
  embedder @4 :Text;
  dimension @5 :UInt32;
  liveItems @6 :UInt64;
  headVersion @7 :UInt64;   # advanced by every item version written
  defaultRetriever @8 :Text;  # how search ranks when the client does not say
  language @9 :Text;        # stemming language of lexical search ("" = english)
}

# What a write with an idempotency key did, so that a retry of it (same
# tenant, same key) returns the same outcome instead of writing again.
struct IdempotencyRecord {
  operation @0 :UInt16;     # the request kind (wire Request union tag)
  cubeId @1 :UInt64;
  itemId @2 :UInt64;
  version @3 :UInt32;       # the version the write produced
  recordedAtMs @4 :Int64;
}

# A named, cube-wide version: the cube as it was at head version cubeVersion.
struct SnapshotRecord {
  tag @0 :Text;
  cubeVersion @1 :UInt64;
  createdAtMs @2 :Int64;
  liveItems @3 :UInt64;
  createdBy @4 :UInt32;
}

# Archives (archive.h): the manifest and trailer frames.
struct ArchiveManifest {
  cubeName @0 :Text;
  embedder @1 :Text;
  dimension @2 :UInt32;
  createdAtMs @3 :Int64;
  headVersion @4 :UInt64;
  exportedAtMs @5 :Int64;
  liveItems @6 :UInt64;
  defaultRetriever @7 :Text;
  language @8 :Text;
}

struct ArchiveTrailer {
  versions @0 :UInt64;      # version frames in the archive
  snapshots @1 :UInt64;     # snapshot frames
  crc @2 :UInt32;           # CRC-32C of every byte before the trailer frame
  blobs @3 :UInt64;         # blobs (adapters) the archive carries whole (format 3)
}

# An activation item: a model's KV state for a token prefix (activation.h).
# The state itself is a blob in the blob store.
struct ActivationRecord {
  id @0 :UInt64;
  cubeId @1 :UInt64;
  tenant @2 :UInt32;
  modelHash @3 :Text;
  adapters @4 :Text;
  kvType @5 :Text;
  layout @6 :Text;
  stateFormat @7 :UInt32;
  model @8 :Text;
  chunkTokens @9 :UInt32;
  tokens @10 :List(Int32);
  sources @11 :List(UInt64);
  blob @12 :Data;           # SHA-256 of the state blob
  size @13 :UInt64;
  createdAtMs @14 :Int64;
  lastUsedMs @15 :Int64;
  uses @16 :UInt64;
  prefixes @17 :List(Data); # the chain digests it is found under
  prefillMs @18 :Float64;   # decoding its tokens when it was made; 0: unknown (older records)
}

# One change to one row (change_set.h): the table and kind by their numbers
# in change_set.h (TableId, ChangeKind).
struct ChangeRecord {
  table @0 :UInt8;
  kind @1 :UInt8;
  key @2 :Data;
  value @3 :Data;
}

# A record of the replication log: one commit group's changes to one shard
# (docs/scale-out.md).
struct ChangeGroupRecord {
  shard @0 :UInt32;
  epoch @1 :UInt64;
  schema @2 :UInt32;
  changes @3 :List(ChangeRecord);
  # SHA-256 of the shard's record before this one (32 zero bytes before the
  # first): the log is a hash chain, so a node holding a different history
  # stops at the first record that does not follow its own. Absent in
  # records made before the chain.
  previous @4 :Data;
}
