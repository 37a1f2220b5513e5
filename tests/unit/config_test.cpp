#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "kernel/config.h"
#include "tests/support/memosd_process.h"

using memos::kernel::Config;
using memos::kernel::load_config_file;
using memos::testing::TempDir;

namespace {

std::string load(const std::string& text, Config* config) {
  TempDir dir;
  std::string path = dir.path() + "/memosd.conf";
  std::ofstream(path) << text;
  return load_config_file(path, config);
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_are_documented_values) {
  Config c;
  BOOST_TEST(c.ipc.max_message_bytes == 16u << 20);
  BOOST_TEST(c.ipc.max_segments == 512u);
  BOOST_TEST(c.search.embedding_dim == 0u);  // the embedder's own
  BOOST_TEST(memos::kernel::validate_config(c) == "");
}

BOOST_AUTO_TEST_CASE(the_shipped_sample_config_loads) {
  Config c;
  std::string err = load_config_file(MEMOS_SOURCE_DIR "/dist/memosd.conf", &c);
  BOOST_TEST(err == "");
  Config defaults;
  BOOST_TEST(c.ipc.max_message_bytes == defaults.ipc.max_message_bytes);
  BOOST_TEST(c.store.map_size_mb == defaults.store.map_size_mb);
  BOOST_TEST(c.search.max_k == defaults.search.max_k);
}

BOOST_AUTO_TEST_CASE(values_are_read) {
  Config c;
  std::string err = load(
      "socket = \"/tmp/x.sock\"\nlog_level = \"debug\"\n[ipc]\nmax_message_bytes = 65536\n"
      "[store]\nmax_text_bytes = 1024\n[search]\nembedding_dim = 512\n",
      &c);
  BOOST_TEST(err == "");
  BOOST_TEST(c.socket == "/tmp/x.sock");
  BOOST_TEST(c.log_level == "debug");
  BOOST_TEST(c.ipc.max_message_bytes == 65536u);
  BOOST_TEST(c.search.embedding_dim == 512u);
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_refused_with_their_line) {
  Config c;
  std::string err = load("log_level = \"info\"\n\n[ipc]\nmax_mesage_bytes = 5\n", &c);
  BOOST_TEST(err.find(":4:") != std::string::npos, err);
  BOOST_TEST(err.find("unknown key 'ipc.max_mesage_bytes'") != std::string::npos, err);
  err = load("[nonsense]\nx = 1\n", &c);
  BOOST_TEST(err.find("unknown key 'nonsense'") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(wrong_types_and_ranges_are_refused) {
  Config c;
  std::string err = load("[ipc]\nmax_message_bytes = \"big\"\n", &c);
  BOOST_TEST(err.find("expected an integer") != std::string::npos, err);
  BOOST_TEST(err.find(":2:") != std::string::npos, err);
  err = load("[search]\nembedding_dim = 3\n", &c);
  BOOST_TEST(
      err.find("embedding_dim must be 0 (the embedder's own) or at least 16") != std::string::npos,
      err);
  err = load("[search]\nembedding_dim = 99999999999999999\n", &c);
  BOOST_TEST(!err.empty());
  err = load("log_level = \"loud\"\n", &c);
  BOOST_TEST(err.find("log_level must be one of") != std::string::npos, err);
  err = load("worker_threads = -1\n", &c);
  BOOST_TEST(err.find("out of range") != std::string::npos, err);
  err = load("[ipc]\nmax_message_bytes = 2.5\n", &c);
  BOOST_TEST(err.find("expected an integer") != std::string::npos, err);
  err = load("ipc = 5\n", &c);
  BOOST_TEST(!err.empty());
}

// [cluster]: names become parts of NATS subjects and etcd keys, endpoints
// must say where; a node that enables it without the engines or its own
// name is refused at start, not at its first write.
BOOST_AUTO_TEST_CASE(cluster_settings_are_read_and_hostile_ones_refused) {
  Config c;
  std::string err = load(
      "[cluster]\nenabled = true\nname = \"prod-1\"\nnode_id = \"n_2\"\n"
      "nats = [\"nats://10.0.0.1:4222\", \"nats://[::1]:4222/\"]\n"
      "etcd = [\"http://10.0.0.1:2379\"]\nreplicas = 3\nlease_ms = 1500\nshards = 16\n"
      "prefetch_blobs = true\nindex_share_s = 60\nindex_share_min_items = 5000\n"
      "store_snapshot_s = 3600\nlog_retention_s = 0\nblob_grace_s = 60\n",
      &c);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  BOOST_TEST(c.cluster.enabled);
  BOOST_TEST(c.cluster.name == "prod-1");
  BOOST_TEST(c.cluster.node_id == "n_2");
  BOOST_TEST(c.cluster.nats.size() == 2u);
  BOOST_TEST(c.cluster.etcd.front() == "http://10.0.0.1:2379");
  BOOST_TEST(c.cluster.lease_ms == 1500u);
  BOOST_TEST(c.cluster.shards == 16u);
  BOOST_TEST(Config{}.cluster.shards == 0u);  // the cluster's (1 making one)
  BOOST_TEST(c.cluster.prefetch_blobs);
  BOOST_TEST(!Config{}.cluster.enabled);         // one node unless asked
  BOOST_TEST(!Config{}.cluster.prefetch_blobs);  // blobs fetched on first use
  BOOST_TEST(c.cluster.index_share_s == 60u);
  BOOST_TEST(c.cluster.index_share_min_items == 5000u);
  BOOST_TEST(Config{}.cluster.index_share_s == 300u);
  BOOST_TEST(Config{}.cluster.index_share_min_items == 1000u);
  BOOST_TEST(c.cluster.store_snapshot_s == 3600u);
  BOOST_TEST(c.cluster.log_retention_s == 0u);
  BOOST_TEST(Config{}.cluster.store_snapshot_s == 21600u);  // six hours
  BOOST_TEST(Config{}.cluster.log_retention_s == 259200u);  // three days
  BOOST_TEST(c.cluster.blob_grace_s == 60u);
  BOOST_TEST(Config{}.cluster.blob_grace_s == 3600u);
  BOOST_TEST(!cluster_tls(c.cluster));
  BOOST_TEST(!cluster_tls(Config{}.cluster));

  // TLS to the engines: the files, and servers named for it.
  Config secure;
  err = load(
      "[cluster]\nnats = [\"tls://10.0.0.1:4222\", \"nats://10.0.0.2:4222\"]\n"
      "etcd = [\"https://10.0.0.1:2379\"]\ntls_ca = \"/etc/memos/ca.pem\"\n"
      "tls_cert = \"/etc/memos/n1.pem\"\ntls_key = \"/etc/memos/n1.key\"\n",
      &secure);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  BOOST_TEST(cluster_tls(secure.cluster));
  BOOST_TEST(secure.cluster.tls_ca == "/etc/memos/ca.pem");
  BOOST_TEST(secure.cluster.tls_cert == "/etc/memos/n1.pem");
  BOOST_TEST(secure.cluster.tls_key == "/etc/memos/n1.key");
  Config by_scheme;  // a tls:// server alone turns it on, with the system's CAs
  err = load("[cluster]\nnats = [\"tls://a:1\"]\netcd = [\"https://a:2\"]\n", &by_scheme);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  BOOST_TEST(cluster_tls(by_scheme.cluster));

  const std::pair<std::string, std::string> refused[] = {
      {"[cluster]\nname = \"a.b\"\n", "letters, digits"},  // a subject token separator
      {"[cluster]\nname = \"memos.*\"\n", "letters, digits"},
      {"[cluster]\nname = \"\"\n", "1 to 64"},
      {"[cluster]\nnode_id = \"" + std::string(65, 'n') + "\"\n", "1 to 64"},
      {"[cluster]\nnode_id = \"n 1\"\n", "letters, digits"},
      {"[cluster]\nnode_id = \"n\\u0000\"\n", "letters, digits"},
      {"[cluster]\nnats = \"nats://a:1\"\n", "expected an array"},
      {"[cluster]\nnats = [\"\"]\n", "non-empty"},
      {"[cluster]\nnats = [\"10.0.0.1:4222\"]\n", "does not start with nats://"},
      {"[cluster]\nnats = [\"nats://host\"]\n", "host:port"},
      {"[cluster]\nnats = [\"nats://host:0\"]\n", "no port from 1 to 65535"},
      {"[cluster]\nnats = [\"nats://host:65536\"]\n", "no port from 1 to 65535"},
      {"[cluster]\nnats = [\"nats://host:99999999999999999999\"]\n", "no port"},
      {"[cluster]\nnats = [\"nats://us er@host:1\"]\n", "host name cannot have"},
      {"[cluster]\netcd = [\"ftp://host:2379\"]\n", "does not start with http://"},
      {"[cluster]\netcd = [\"http://host:2379\"]\ntls_ca = \"/ca.pem\"\n",
       "does not start with https://"},
      {"[cluster]\nnats = [\"tls://a:1\"]\netcd = [\"http://host:2379\"]\n", "TLS is on"},
      {"[cluster]\netcd = [\"https://a:1\", \"http://b:2\"]\n", "does not start with https://"},
      {"[cluster]\nnats = [\"tls://host\"]\n", "host:port"},
      {"[cluster]\nnats = [\"tls:/host:1\"]\n", "does not start with nats://"},
      {"[cluster]\ntls_cert = \"/n1.pem\"\n", "go together"},
      {"[cluster]\ntls_key = \"/n1.key\"\n", "go together"},
      {"[cluster]\ntls_ca = 5\n", "string"},
      {"[cluster]\ntls_ca = [\"/ca.pem\"]\n", "string"},
      {"[cluster]\ntls_ca = \"/ca\\u0000.pem\"\n", "tls_ca"},
      {"[cluster]\netcd = [\"http://:2379\"]\n", "host:port"},
      {"[cluster]\nreplicas = 0\n", "out of range"},
      {"[cluster]\nreplicas = 7\n", "out of range"},
      {"[cluster]\nlease_ms = 100\n", "out of range"},

      {"[cluster]\nshards = 4097\n", "out of range"},
      {"[cluster]\nshards = -1\n", "out of range"},
      {"[cluster]\nshards = 1.5\n", "integer"},
      {"[cluster]\nshards = \"16\"\n", "integer"},
      {"[cluster]\nprefetch_blobs = \"yes\"\n", "expected true or false"},
      {"[cluster]\nprefetch_blobs = 1\n", "expected true or false"},
      {"[cluster]\nindex_share_s = -1\n", "out of range"},
      {"[cluster]\nindex_share_s = 604801\n", "out of range"},
      {"[cluster]\nindex_share_s = \"5m\"\n", "expected an integer"},
      {"[cluster]\nindex_share_min_items = 0\n", "out of range"},
      {"[cluster]\nindex_share_min_items = 99999999999999999999\n", "not representable"},
      {"[cluster]\nstore_snapshot_s = -1\n", "out of range"},
      {"[cluster]\nstore_snapshot_s = 2592001\n", "out of range"},
      {"[cluster]\nstore_snapshot_s = \"6h\"\n", "expected an integer"},
      {"[cluster]\nlog_retention_s = -1\n", "out of range"},
      {"[cluster]\nlog_retention_s = 31536001\n", "out of range"},
      {"[cluster]\nlog_retention_s = 1e9\n", "integer"},
      {"[cluster]\nblob_grace_s = -5\n", "out of range"},
      {"[cluster]\nblob_grace_s = 2592001\n", "out of range"},
      {"[cluster]\nblob_grace_s = true\n", "integer"},
      {"[cluster]\nleader = \"me\"\n", "unknown key 'cluster.leader'"},
      {"[cluster]\nenabled = true\nnats = [\"nats://a:1\"]\netcd = [\"http://a:2\"]\n",
       "needs cluster.node_id"},
      {"[cluster]\nenabled = true\nnode_id = \"n1\"\netcd = [\"http://a:2\"]\n",
       "needs cluster.nats"},
      {"[cluster]\nenabled = true\nnode_id = \"n1\"\nnats = [\"nats://a:1\"]\n",
       "needs cluster.etcd"},
  };
  for (const auto& [text, expected] : refused) {
    Config fresh;
    err = load(text, &fresh);
    BOOST_TEST(err.find(expected) != std::string::npos, text << " -> " << err);
  }
}

BOOST_AUTO_TEST_CASE(syntax_errors_carry_a_position) {
  Config c;
  std::string err = load("log_level = \"info\"\n[ipc\n", &c);
  BOOST_TEST(err.find(":2:") != std::string::npos, err);
  err = load(std::string("x = \"\xff\xfe\"\n"), &c);
  BOOST_TEST(!err.empty());
}

BOOST_AUTO_TEST_CASE(inconsistent_limits_are_refused) {
  Config c;
  std::string err = load("[ipc]\nmax_message_bytes = 65536\n[store]\nmax_text_bytes = 65536\n", &c);
  BOOST_TEST(err.find("max_text_bytes") != std::string::npos, err);
  // Like every error of the file, it names the file (memosd --check-config).
  BOOST_TEST(err.find("/memosd.conf: ") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(a_missing_file_is_an_error) {
  Config c;
  BOOST_TEST(!load_config_file("/nonexistent/memosd.conf", &c).empty());
}

// A parser reading a folder or /dev/zero sees an empty file, which is valid.
BOOST_AUTO_TEST_CASE(only_a_regular_file_is_a_config) {
  Config c;
  TempDir dir;
  BOOST_TEST(load_config_file(dir.path(), &c).find("not a regular file") != std::string::npos);
  BOOST_TEST(load_config_file("/dev/zero", &c).find("not a regular file") != std::string::npos);
  BOOST_TEST(load_config_file("", &c).find("empty path") != std::string::npos);
  std::string huge = dir.path() + "/huge.conf";
  std::ofstream(huge) << "# " << std::string(2 << 20, 'x') << "\n";
  BOOST_TEST(load_config_file(huge, &c).find("1 MiB") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(named_files_are_checked) {
  Config c;
  BOOST_TEST(memos::kernel::check_named_files(c) == "");
  TempDir dir;
  c.executor.model = dir.path() + "/absent.gguf";
  BOOST_TEST(memos::kernel::check_named_files(c).find("executor.model") != std::string::npos);
  c.executor.model = dir.path();
  BOOST_TEST(memos::kernel::check_named_files(c).find("not a file") != std::string::npos);
  c.executor.model = dir.path() + "/model.gguf";
  std::ofstream(c.executor.model) << "GGUF";
  BOOST_TEST(memos::kernel::check_named_files(c) == "");
  // The answer tiers' models too, each named by its key.
  c.executor.models[2] = dir.path() + "/big.gguf";
  BOOST_TEST(memos::kernel::check_named_files(c).find("executor.models.high = ") == 0);
  std::ofstream(c.executor.models[2]) << "GGUF";
  BOOST_TEST(memos::kernel::check_named_files(c) == "");
}

BOOST_AUTO_TEST_CASE(the_answer_tiers_models_are_a_table_of_tiers) {
  Config c;
  BOOST_REQUIRE(load("[executor]\nmodel = \"/m.gguf\"\n[executor.models]\nlow = \"/s.gguf\"\n"
                     "high = \"/l.gguf\"\n",
                     &c) == "");
  BOOST_TEST(c.executor.models[0] == "/s.gguf");
  BOOST_TEST(c.executor.models[1] == "");  // executor.model answers at mid
  BOOST_TEST(c.executor.models[2] == "/l.gguf");
  BOOST_TEST(Config{}.executor.models[2] == "");
  for (const char* bad :
       {"[executor]\nmodel = \"/m.gguf\"\nmodels = \"/l.gguf\"\n",
        "[executor]\nmodel = \"/m.gguf\"\n[executor.models]\ntop = \"/l.gguf\"\n",
        "[executor]\nmodel = \"/m.gguf\"\n[executor.models]\nhigh = 3\n",
        "[executor]\nmodel = \"/m.gguf\"\n[executor.models.high]\nx = 1\n",
        "[executor]\nmodel = \"/m.gguf\"\n[executor.models]\nhigh = \"a\\u0000b\"\n"}) {
    Config x;
    BOOST_TEST(!load(bad, &x).empty(), bad);
  }
  // Without executor.model there is nothing to answer beside.
  Config x;
  std::string err = load("[executor.models]\nhigh = \"/l.gguf\"\n", &x);
  BOOST_TEST(err.find("executor.models.high needs executor.model") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(hostile_large_file_is_handled) {
  Config c;
  std::string big = "log_level = \"" + std::string(1 << 20, 'a') + "\"\n";
  BOOST_TEST(!load(big, &c).empty());
}

BOOST_AUTO_TEST_CASE(search_and_retriever_keys_are_read_and_checked) {
  Config c;
  std::string err = load(
      "[search]\ndefault_mode = \"lexical\"\nhybrid_depth = 80\nrrf_k = 30\n"
      "dense_weight = 0.5\nlexical_weight = 2\nrecency_weight = 0.1\n"
      "recency_half_life_days = 7\nimportance_weight = 1\nmmr_lambda = 0.7\n"
      "snapshot_interval_s = 5\nindex_max_backlog = 500\nindex_max_backlog_mb = 16\n"
      "stop_snapshot_s = 0\n"
      "[plugins]\ndense = \"d\"\nlexical = \"l\"\nhybrid = \"h\"\n",
      &c);
  BOOST_TEST(err == "");
  BOOST_TEST((c.search.default_mode == memos::SearchMode::lexical));
  BOOST_TEST(c.search.hybrid_depth == 80u);
  BOOST_TEST(c.search.rrf_k == 30u);
  BOOST_TEST(c.search.dense_weight == 0.5f);
  BOOST_TEST(c.search.lexical_weight == 2.0f);  // an integer is a number too
  BOOST_TEST(c.search.mmr_lambda == 0.7f);
  BOOST_TEST(c.search.snapshot_interval_s == 5u);
  BOOST_TEST(c.search.index_max_backlog == 500u);
  BOOST_TEST(c.search.index_max_backlog_mb == 16u);
  BOOST_TEST(c.search.stop_snapshot_s == 0u);  // no snapshots at the stop
  BOOST_TEST(c.plugins.dense == "d");
  BOOST_TEST(c.plugins.hybrid == "h");
  for (const char* bad : {"default_mode = \"telepathy\"",
                          "hybrid_depth = 0",
                          "rrf_k = 0",
                          "dense_weight = 0",
                          "dense_weight = -1",
                          "dense_weight = nan",
                          "lexical_weight = inf",
                          "mmr_lambda = 1.5",
                          "recency_weight = \"high\"",
                          "importance_weight = 1e9",
                          "snapshot_interval_s = 0",
                          "recency_half_life_days = 0",
                          "index_max_backlog = 0",
                          "index_max_backlog = -5",
                          "index_max_backlog = 18446744073709551617",
                          "index_max_backlog_mb = 0",
                          "index_max_backlog_mb = 65537",
                          "index_max_backlog = \"lots\"",
                          "stop_snapshot_s = -1",
                          "stop_snapshot_s = 3601",
                          "stop_snapshot_s = 2.5"}) {
    Config fresh;
    err = load(std::string("[search]\n") + bad + "\n", &fresh);
    BOOST_TEST(!err.empty(), bad);
    BOOST_TEST(err.find(":2:") != std::string::npos, bad << ": " << err);
  }
  Config fresh;
  BOOST_TEST(!load("[plugins]\ndense = \"\"\n", &fresh).empty());
}

BOOST_AUTO_TEST_CASE(plugin_settings_tables_are_read_as_text) {
  Config c;
  std::string err = load(
      "[plugins.settings.faiss-retriever]\nhnsw_threshold = 500\nef_search = \"128\"\n"
      "[plugins.settings.xapian-retriever]\nk1 = 0.9\nflag = true\n",
      &c);
  BOOST_TEST(err == "");
  BOOST_TEST(c.plugins.settings["faiss-retriever"]["hnsw_threshold"] == "500");
  BOOST_TEST(c.plugins.settings["faiss-retriever"]["ef_search"] == "128");
  BOOST_TEST(c.plugins.settings["xapian-retriever"]["k1"] == "0.9");
  BOOST_TEST(c.plugins.settings["xapian-retriever"]["flag"] == "true");
  for (const char* bad :
       {"[plugins]\nsettings = 5\n", "[plugins.settings]\nx = 5\n",
        "[plugins.settings.p]\nlist = [1, 2]\n", "[plugins.settings.p]\nt = { a = 1 }\n"}) {
    Config fresh;
    BOOST_TEST(!load(bad, &fresh).empty(), bad);
  }
}

BOOST_AUTO_TEST_CASE(executor_and_activation_keys_are_read_and_checked) {
  Config c;
  std::string err = load(
      "[executor]\nmodel = \"/m.gguf\"\nthreads = 2\ncontext = 2048\nbatch = 64\n"
      "kv_type = \"q8_0\"\nmax_tokens = 16\nprompt_cache_mb = 0\nmax_adapter_mb = 64\n"
      "device = \"gpu:1\"\ngpu_layers = 12\n"
      "[activation]\nchunk_tokens = 32\nresident_mb = 0\npinned_mb = 64\ngpu_max_mb = 512\n"
      "tenant_max_mb = 10\nmax_state_mb = 5\n",
      &c);
  BOOST_TEST(err == "");
  BOOST_TEST(c.executor.model == "/m.gguf");
  BOOST_TEST(c.executor.context == 2048u);
  BOOST_TEST(c.executor.kv_type == "q8_0");
  BOOST_TEST(c.activation.chunk_tokens == 32u);
  BOOST_TEST(c.activation.resident_mb == 0u);
  BOOST_TEST(c.executor.prompt_cache_mb == 0u);
  BOOST_TEST(c.executor.device == "gpu:1");
  BOOST_TEST(c.executor.gpu_layers == 12);
  BOOST_TEST(c.activation.pinned_mb == 64u);
  BOOST_TEST(c.activation.gpu_max_mb == 512u);
  Config defaults;
  BOOST_TEST(defaults.executor.device == "auto");
  BOOST_TEST(defaults.executor.gpu_layers == -1);
  BOOST_TEST(defaults.activation.pinned_mb == 1280u);
  BOOST_TEST(defaults.activation.gpu_max_mb == 0u);
  BOOST_TEST(defaults.executor.model.empty());  // no executor unless asked
  BOOST_TEST(defaults.executor.prompt_cache_mb == 256u);
  BOOST_TEST(c.executor.max_adapter_mb == 64u);
  BOOST_TEST(defaults.executor.max_adapter_mb == 512u);
  BOOST_TEST(defaults.store.max_adapter_mb == 1024u);
  for (const char* bad : {"[executor]\nkv_type = \"f8\"\n",
                          "[executor]\ndevice = \"cuda\"\n",
                          "[executor]\ndevice = \"gpu:\"\n",
                          "[executor]\ndevice = \"gpu:-1\"\n",
                          "[executor]\ndevice = \"gpu:99999\"\n",
                          "[executor]\ndevice = \"\"\n",
                          "[executor]\ndevice = 0\n",
                          "[executor]\ngpu_layers = -2\n",
                          "[executor]\ngpu_layers = 65537\n",
                          "[executor]\ngpu_layers = \"all\"\n",
                          "[activation]\npinned_mb = -1\n",
                          "[activation]\npinned_mb = 16777217\n",
                          "[activation]\ngpu_max_mb = -1\n",
                          "[activation]\ngpu_max_mb = \"1G\"\n",
                          "[executor]\ncontext = 10\n",
                          "[executor]\nbatch = 0\n",
                          "[executor]\nthreads = 1000\n",
                          "[executor]\nmodel = 5\n",
                          "[executor]\ncall_timeout_ms = 1\n",
                          "[executor]\nprompt_cache_mb = -1\n",
                          "[executor]\nprompt_cache_mb = 16777217\n",
                          "[executor]\nprompt_cache_mb = \"1G\"\n",
                          "[executor]\nmax_adapter_mb = -1\n",
                          "[executor]\nmax_adapter_mb = 16777217\n",
                          "[store]\nmax_adapter_mb = 0\n",
                          "[store]\nmax_adapter_mb = 1048577\n",
                          "[store]\nmax_adapter_mb = 1.5\n",
                          "[activation]\nchunk_tokens = 0\n",
                          "[activation]\nmax_state_mb = 251\n",
                          "[activation]\ntenant_max_mb = 0\n",
                          "[activation]\nresident_mb = -1\n",
                          "[activation]\nnonsense = 1\n",
                          "[activation]\neviction = \"fifo\"\n",
                          "[activation]\neviction = 1\n",
                          "[activation]\neviction_half_life_s = 0\n",
                          "[activation]\neviction_half_life_s = 31536001\n",
                          "[activation]\neviction_half_life_s = \"1h\"\n"}) {
    Config x;
    BOOST_TEST(!load(bad, &x).empty(), bad);
  }
}

BOOST_AUTO_TEST_CASE(activation_eviction_is_utility_or_lru) {
  using memos::kernel::ActivationEviction;
  Config c;
  BOOST_TEST((c.activation.eviction == ActivationEviction::utility));
  BOOST_TEST(c.activation.eviction_half_life_s == 3600u);
  std::string err = load("[activation]\neviction = \"lru\"\neviction_half_life_s = 31536000\n", &c);
  BOOST_TEST(err == "");
  BOOST_TEST((c.activation.eviction == ActivationEviction::lru));
  BOOST_TEST(c.activation.eviction_half_life_s == 31536000u);
  // Printed and read back the same.
  memos::kernel::resolve_defaults(&c);
  Config back;
  err = load(memos::kernel::config_to_toml(c), &back);
  BOOST_REQUIRE_MESSAGE(err == "", err);
  BOOST_TEST((back.activation.eviction == ActivationEviction::lru));
  BOOST_TEST(memos::kernel::changed_keys(c, back).empty());
  back.activation.eviction = ActivationEviction::utility;
  back.activation.eviction_half_life_s = 60;
  std::vector<std::string> expected = {"activation.eviction", "activation.eviction_half_life_s"};
  BOOST_TEST(memos::kernel::changed_keys(c, back) == expected, boost::test_tools::per_element());

  err = load("[activation]\neviction = \"fifo\"\n", &c);
  BOOST_TEST(err.find(":2:") != std::string::npos, err);
  BOOST_TEST(
      err.find("activation.eviction: must be utility or lru, not 'fifo'") != std::string::npos,
      err);
  err = load("[activation]\neviction_half_life_s = 0\n", &c);
  BOOST_TEST(err.find("activation.eviction_half_life_s: value 0 is out of range [1, 31536000]") !=
                 std::string::npos,
             err);
}

BOOST_AUTO_TEST_CASE(scheduler_keys_are_read_checked_and_printed) {
  Config c;
  BOOST_TEST(c.scheduler.defaults.enabled);
  BOOST_TEST(c.scheduler.defaults.working_set_tokens == 1024u);
  BOOST_TEST(c.scheduler.defaults.strength_gain == 1.0);
  BOOST_TEST(c.scheduler.defaults.time_unit_s == 86400u);
  BOOST_TEST((c.scheduler.defaults.forgetting == memos::policies::Forgetting::off));
  BOOST_TEST(c.scheduler.interval_s == 60u);
  std::string err = load(
      "[scheduler]\nenabled = false\ninterval_s = 5\nlog_entries = 0\n"
      "working_set_tokens = 256\nstrength_gain = 2.5\nsearch_recall_weight = 0.25\n"
      "time_unit = \"hours\"\nforgetting = \"archive\"\narchive_below = 0.05\n"
      "archive_after_s = 3600\n",
      &c);
  BOOST_REQUIRE_MESSAGE(err == "", err);
  BOOST_TEST(!c.scheduler.defaults.enabled);
  BOOST_TEST(c.scheduler.interval_s == 5u);
  BOOST_TEST(c.scheduler.log_entries == 0u);
  BOOST_TEST(c.scheduler.defaults.working_set_tokens == 256u);
  BOOST_TEST(c.scheduler.defaults.strength_gain == 2.5);
  BOOST_TEST(c.scheduler.defaults.search_recall_weight == 0.25);
  BOOST_TEST(c.scheduler.defaults.time_unit_s == 3600u);
  BOOST_TEST((c.scheduler.defaults.forgetting == memos::policies::Forgetting::archive));
  BOOST_TEST(c.scheduler.defaults.archive_below == 0.05);
  BOOST_TEST(c.scheduler.defaults.archive_after_s == 3600u);
  // Printed and read back the same.
  memos::kernel::resolve_defaults(&c);
  Config back;
  err = load(memos::kernel::config_to_toml(c), &back);
  BOOST_REQUIRE_MESSAGE(err == "", err);
  BOOST_TEST(memos::kernel::changed_keys(c, back).empty());

  for (const char* bad :
       {"[scheduler]\nenabled = 1\n", "[scheduler]\ninterval_s = 0\n",
        "[scheduler]\nworking_set_tokens = -1\n", "[scheduler]\nstrength_gain = -0.5\n",
        "[scheduler]\nstrength_gain = nan\n", "[scheduler]\nstrength_gain = inf\n",
        "[scheduler]\nsearch_recall_weight = 1.5\n", "[scheduler]\ntime_unit = \"weeks\"\n",
        "[scheduler]\ntime_unit = 7\n", "[scheduler]\nforgetting = \"delete\"\n",
        "[scheduler]\narchive_below = 0\n", "[scheduler]\narchive_below = 1\n",
        "[scheduler]\narchive_after_s = -1\n", "[scheduler]\nnonsense = 1\n",
        "[scheduler]\nlog_entries = 99999999\n"}) {
    Config x;
    BOOST_TEST(!load(bad, &x).empty(), bad);
  }
  err = load("[scheduler]\nforgetting = \"delete\"\n", &c);
  BOOST_TEST(
      err.find("scheduler.forgetting: must be off or archive, not 'delete'") != std::string::npos,
      err);
}

BOOST_AUTO_TEST_CASE(connection_limit_and_timeout_keys_are_read_and_checked) {
  Config defaults;
  BOOST_TEST(defaults.ipc.max_connections_per_uid == 64u);
  BOOST_TEST(defaults.ipc.admin_reserved_connections == 16u);
  BOOST_TEST(defaults.ipc.frame_timeout_ms == 30000u);
  BOOST_TEST(defaults.ipc.idle_timeout_ms == 0u);
  BOOST_TEST(defaults.ipc.max_buffered_input_bytes == 256u << 20);
  BOOST_TEST(defaults.ipc.max_buffered_input_bytes_per_uid == 64u << 20);

  Config c;
  std::string err = load(
      "[ipc]\nmax_connections = 100\nmax_connections_per_uid = 10\n"
      "admin_reserved_connections = 3\nframe_timeout_ms = 500\nidle_timeout_ms = 60000\n"
      "max_buffered_input_bytes = 536870912\nmax_buffered_input_bytes_per_uid = 33554432\n",
      &c);
  BOOST_TEST(err == "");
  BOOST_TEST(c.ipc.max_connections_per_uid == 10u);
  BOOST_TEST(c.ipc.admin_reserved_connections == 3u);
  BOOST_TEST(c.ipc.frame_timeout_ms == 500u);
  BOOST_TEST(c.ipc.idle_timeout_ms == 60000u);
  BOOST_TEST(c.ipc.max_buffered_input_bytes == 512u << 20);
  BOOST_TEST(c.ipc.max_buffered_input_bytes_per_uid == 32u << 20);

  auto refused = [](const std::string& text, const std::string& expected) {
    Config fresh;
    std::string e = load(text, &fresh);
    BOOST_TEST(e.find(expected) != std::string::npos, text << " -> " << e);
  };
  refused("[ipc]\nmax_connections_per_uid = 0\n",
          "ipc.max_connections_per_uid: value 0 is out of range");
  refused("[ipc]\nmax_connections_per_uid = \"many\"\n", "expected an integer");
  refused("[ipc]\nmax_connections = 10\nmax_connections_per_uid = 11\n",
          "ipc.max_connections_per_uid must be at most ipc.max_connections");
  refused("[ipc]\nadmin_reserved_connections = 0\n", "out of range [1, 1000000]");
  refused("[ipc]\nframe_timeout_ms = 10\n", "ipc.frame_timeout_ms: value 10 is out of range");
  refused("[ipc]\nidle_timeout_ms = -1\n", "out of range");
  refused("[ipc]\nidle_timeout_ms = 50\n", "ipc.idle_timeout_ms must be 0 (never) or at least 100");
  refused("[ipc]\nmax_buffered_input_bytes_per_uid = 1048576\n",
          "ipc.max_buffered_input_bytes_per_uid must be at least ipc.max_message_bytes");
  refused("[ipc]\nmax_buffered_input_bytes = 33554432\n",
          "ipc.max_buffered_input_bytes must be at least ipc.max_buffered_input_bytes_per_uid");
  refused("[ipc]\nmax_buffered_input_bytes = 1.5e9\n", "expected an integer");
}

BOOST_AUTO_TEST_CASE(the_plugin_hosts_memory_limit_is_read_and_checked) {
  Config c;
  BOOST_TEST(c.plugins.host_memory_mb == 0u);  // half the physical memory
  BOOST_TEST(load("[plugins]\nhost_memory_mb = 2048\n", &c) == "");
  BOOST_TEST(c.plugins.host_memory_mb == 2048u);
  BOOST_TEST(load("[plugins]\nhost_memory_mb = 0\n", &c) == "");
  BOOST_TEST(c.plugins.host_memory_mb == 0u);
  std::string err = load("[plugins]\nhost_memory_mb = 16\n", &c);
  BOOST_TEST(err.find("plugins.host_memory_mb must be 0") != std::string::npos, err);
  err = load("[plugins]\nhost_memory_mb = -1\n", &c);
  BOOST_TEST(err.find("out of range") != std::string::npos, err);
  err = load("[plugins]\nhost_memory_mb = \"lots\"\n", &c);
  BOOST_TEST(err.find("expected an integer") != std::string::npos, err);
}

// --print-config's text reads back as the same configuration, and
// changed_keys() (SIGHUP's warning) names exactly the keys that differ.
BOOST_AUTO_TEST_CASE(printed_config_reads_back_and_changes_are_named) {
  Config c;
  std::string err = load(
      "log_format = \"json\"\n[search]\ndense_weight = 0.1\nmax_k = 7\n"
      "[plugins]\nhost = \"/opt/host \\\"x\\\"\"\n"
      "[plugins.settings.faiss-retriever]\nhnsw_m = 16\n"
      "[executor]\nmodel = \"/m.gguf\"\n[executor.models]\nhigh = \"/l.gguf\"\n",
      &c);
  BOOST_REQUIRE(err == "");
  memos::kernel::resolve_defaults(&c);
  Config back;
  err = load(memos::kernel::config_to_toml(c), &back);
  BOOST_REQUIRE_MESSAGE(err == "", err << "\n" << memos::kernel::config_to_toml(c));
  BOOST_TEST(memos::kernel::changed_keys(c, back).empty());
  BOOST_TEST(back.search.dense_weight == 0.1f);
  BOOST_TEST(back.plugins.host == "/opt/host \"x\"");
  BOOST_TEST(back.plugins.settings["faiss-retriever"]["hnsw_m"] == "16");
  BOOST_TEST((back.log_format == memos::kernel::LogFormat::json));
  BOOST_TEST(back.executor.models[2] == "/l.gguf");

  back.search.max_k = 8;
  back.ipc.max_segments = 9;
  back.log_level = "debug";
  std::vector<std::string> expected = {"log_level", "ipc.max_segments", "search.max_k"};
  BOOST_TEST(memos::kernel::changed_keys(c, back) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(log_format_is_text_or_json) {
  Config c;
  BOOST_TEST((c.log_format == memos::kernel::LogFormat::text));
  std::string err = load("log_format = \"xml\"\n", &c);
  BOOST_TEST(err.find("log_format must be text or json, not 'xml'") != std::string::npos, err);
  err = load("log_format = 1\n", &c);
  BOOST_TEST(err.find("log_format: expected a string") != std::string::npos, err);
}
