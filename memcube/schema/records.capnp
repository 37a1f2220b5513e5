# records.capnp — the on-disk encoding of LMDB values in memcube.
#
# This is the storage format, deliberately separate from the wire protocol
# (ipc/schema/memos.capnp) so that either can evolve alone. Fields are only
# added at the end.

@0xb1d3a47b0e2c5f91;

$import "/capnp/c++.capnp".namespace("memos::records");

struct MetaEntry {
  key @0 :Text;
  value @1 :Text;
}

struct ItemRecord {
  id @0 :UInt64;
  version @1 :UInt32;
  text @2 :Text;
  tags @3 :List(Text);
  meta @4 :List(MetaEntry);
  createdAtMs @5 :Int64;
  updatedAtMs @6 :Int64;
  deleted @7 :Bool;
}

struct CubeRecord {
  id @0 :UInt64;
  name @1 :Text;
  ownerUid @2 :UInt32;
  createdAtMs @3 :Int64;
  embedder @4 :Text;
  dimension @5 :UInt32;
  liveItems @6 :UInt64;
}
