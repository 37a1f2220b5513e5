#include "memos/client.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "ipc/unix_peer.h"
#include "ipc/wire_vocabulary.h"

namespace memos {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr int kReplyNestingLimit = 64;

capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}
std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

ErrorCode from_wire(wire::ErrorCode code) {
  switch (code) {
    case wire::ErrorCode::BAD_REQUEST:
      return ErrorCode::bad_request;
    case wire::ErrorCode::NOT_FOUND:
      return ErrorCode::not_found;
    case wire::ErrorCode::ALREADY_EXISTS:
      return ErrorCode::already_exists;
    case wire::ErrorCode::TOO_LARGE:
      return ErrorCode::too_large;
    case wire::ErrorCode::BUSY:
      return ErrorCode::busy;
    case wire::ErrorCode::UNAVAILABLE:
      return ErrorCode::unavailable;
    case wire::ErrorCode::INTERNAL:
      return ErrorCode::internal;
    case wire::ErrorCode::CONFLICT:
      return ErrorCode::conflict;
    case wire::ErrorCode::PERMISSION_DENIED:
      return ErrorCode::permission_denied;
    case wire::ErrorCode::STORAGE_FULL:
      return ErrorCode::storage_full;
    case wire::ErrorCode::UNKNOWN:
      break;
  }
  return ErrorCode::unknown;
}

Error protocol_error(const std::string& what) {
  return Error{ErrorCode::protocol_error, what, false};
}

// Reads the named values of one reply. The first value this client does not
// know (a newer memosd's) is remembered and fails the call in finish(): a
// stand-in value would misreport it (a frozen item read as active).
class ReplyReader {
 public:
  Tier tier(wire::Tier wire) {
    if (auto tier = ipc::from_wire(wire)) return *tier;
    unknown("tier " + std::to_string(static_cast<unsigned>(wire)));
    return Tier::plaintext;
  }
  State state(wire::State wire) {
    if (auto state = ipc::from_wire(wire)) return *state;
    unknown("state " + std::to_string(static_cast<unsigned>(wire)));
    return State::active;
  }
  SearchMode search_mode(capnp::Text::Reader name) {
    if (auto mode = parse_search_mode(std::string_view(name.cStr(), name.size()))) return *mode;
    unknown("search mode '" + str(name).substr(0, 64) + "'");
    return SearchMode::dense;
  }
  // A cube made before cubes had a default retriever has none: memosd
  // searches it densely, so it reads as dense.
  SearchMode default_retriever(capnp::Text::Reader name) {
    return name.size() == 0 ? SearchMode::dense : search_mode(name);
  }
  PluginState plugin_state(capnp::Text::Reader name) {
    if (auto state = parse_plugin_state(std::string_view(name.cStr(), name.size()))) return *state;
    unknown("plugin state '" + str(name).substr(0, 64) + "'");
    return PluginState::failed;
  }
  // memosd's status text: one of the outcome's forms, then "; not stored:
  // why" when storing the block's state failed (to_string's form). A form
  // this client does not know comes from an executor that did not restore
  // the state it was given, which memosd treats as a rejection (it drops the
  // state), so it reads as one, the text being the reason.
  void activation_status(capnp::Text::Reader text, ChatReply* out) {
    std::string_view status(text.cStr(), text.size());
    if (status.empty()) return unknown("an empty activation status");
    if (auto outcome = parse_activation_outcome(status)) {
      out->activation_status = std::move(*outcome);
      return;
    }
    constexpr std::string_view kNotStored = "; not stored: ";
    ActivationOutcome unknown_form;
    if (auto cut = status.rfind(kNotStored); cut != std::string_view::npos) {
      unknown_form.not_stored = std::string(status.substr(cut + kNotStored.size()));
      status = status.substr(0, cut);
    }
    unknown_form.rejected = std::string(status);
    out->activation_status = std::move(unknown_form);
  }

  template <class T>
  Result<T> finish(T value) {
    if (!unknown_.empty()) {
      return protocol_error("the reply holds " + unknown_ +
                            ", which this client does not know (is memosd newer?)");
    }
    return value;
  }

 private:
  void unknown(std::string what) {
    if (unknown_.empty()) unknown_ = std::move(what);
  }
  std::string unknown_;
};

Item to_item(ReplyReader& in, wire::Item::Reader r) {
  Item item;
  item.id = r.getId();
  item.version = r.getVersion();
  item.text = str(r.getText());
  for (auto t : r.getTags()) item.tags.push_back(str(t));
  for (auto m : r.getMeta()) item.meta.push_back({str(m.getKey()), str(m.getValue())});
  item.created_at_ms = r.getCreatedAtMs();
  item.recorded_at_ms = r.getRecordedAtMs();
  item.deleted = r.getDeleted();
  item.tier = in.tier(r.getTier());
  item.state = in.state(r.getState());
  item.importance = r.getImportance();
  item.expires_at_ms = r.getExpiresAtMs();
  item.valid_from_ms = r.getValidFromMs();
  item.valid_to_ms = r.getValidToMs();
  item.writer_uid = r.getWriterUid();
  item.session_id = str(r.getSessionId());
  for (auto id : r.getSources()) item.sources.push_back(id);
  item.cube_version = r.getCubeVersion();
  item.hits = r.getHits();
  item.last_access_ms = r.getLastAccessMs();
  return item;
}

Cube to_cube(ReplyReader& in, wire::Cube::Reader r) {
  return Cube{r.getId(),
              str(r.getName()),
              r.getOwnerUid(),
              r.getCreatedAtMs(),
              str(r.getEmbedder()),
              r.getDimension(),
              r.getLiveItems(),
              r.getHeadVersion(),
              in.default_retriever(r.getDefaultRetriever()),
              str(r.getLanguage()),
              str(r.getIndexes())};
}

PluginInfo to_plugin(ReplyReader& in, wire::PluginInfo::Reader r) {
  PluginInfo p;
  p.name = str(r.getName());
  for (auto k : r.getKinds()) p.kinds.push_back(str(k));
  p.state = in.plugin_state(r.getState());
  p.detail = str(r.getDetail());
  p.health = str(r.getHealth());
  p.isolated = r.getIsolated();
  p.library = str(r.getLibrary());
  p.manifest = str(r.getManifest());
  for (auto c : r.getCapabilities()) p.capabilities.push_back({str(c.getKey()), str(c.getValue())});
  for (auto c : r.getSettings()) p.settings.push_back({str(c.getKey()), str(c.getValue())});
  return p;
}

Snapshot to_snapshot(wire::Snapshot::Reader r) {
  return Snapshot{str(r.getTag()), r.getCubeVersion(), r.getCreatedAtMs(), r.getLiveItems(),
                  r.getCreatedBy()};
}

template <class List>
void set_texts(List list, const std::vector<std::string>& values) {
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, text(values[i]));
}

template <class List>
void set_meta(List list, const std::vector<MetaEntry>& values) {
  for (unsigned i = 0; i < values.size(); ++i) {
    list[i].setKey(text(values[i].key));
    list[i].setValue(text(values[i].value));
  }
}

}  // namespace

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request:
      return "badRequest";
    case ErrorCode::not_found:
      return "notFound";
    case ErrorCode::already_exists:
      return "alreadyExists";
    case ErrorCode::too_large:
      return "tooLarge";
    case ErrorCode::busy:
      return "busy";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::internal:
      return "internal";
    case ErrorCode::conflict:
      return "conflict";
    case ErrorCode::permission_denied:
      return "permissionDenied";
    case ErrorCode::storage_full:
      return "storageFull";
    case ErrorCode::unknown:
      return "unknown";
    case ErrorCode::connect_failed:
      return "connectFailed";
    case ErrorCode::connection_lost:
      return "connectionLost";
    case ErrorCode::protocol_error:
      return "protocolError";
  }
  return "unknown";
}

std::string format_id(std::uint64_t id) {
  std::string out(13, '0');
  for (int i = 12; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kCrockford[id & 31];
    id >>= 5;
  }
  return out;
}

std::optional<std::uint64_t> parse_id(std::string_view s) {
  if (s.size() != 13) return std::nullopt;
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c == 'O') c = '0';
    if (c == 'I' || c == 'L') c = '1';
    const char* p = std::strchr(kCrockford, c);
    if (c == '\0' || !p) return std::nullopt;
    auto digit = static_cast<std::uint64_t>(p - kCrockford);
    if (i == 0 && digit > 15) return std::nullopt;  // 13 digits carry 65 bits; 64 fit
    id = (id << 5) | digit;
  }
  return id;
}

std::string default_socket() {
  if (const char* env = std::getenv("MEMOS_SOCKET"); env && *env) return env;
  return ipc::default_socket_path();
}

// ---- Impl -------------------------------------------------------------------

class Client::Impl {
 public:
  // Called with the reply, or with an error when none will come.
  using Handler = std::function<void(const wire::Response::Reader*, const Error*)>;

  Impl(int fd, ClientOptions options) : fd_(fd), options_(options) {
    reader_ = std::thread([this] { read_loop(); });
  }

  ~Impl() {
    shutdown(fd_, SHUT_RDWR);
    if (reader_.joinable()) reader_.join();
    close(fd_);
  }

  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
  }

  // Sends one request built by `build`; `decode` turns the reply into T.
  template <class T, class Build, class Decode>
  std::future<Result<T>> call(Build&& build, Decode&& decode) {
    auto promise = std::make_shared<std::promise<Result<T>>>();
    auto future = promise->get_future();
    const std::uint64_t id = next_id_++;

    capnp::MallocMessageBuilder message;
    auto request = message.initRoot<wire::Request>();
    request.setId(id);
    build(request);
    kj::Array<capnp::word> frame = ipc::encode_frame(message);

    Handler handler = [promise, decode = std::forward<Decode>(decode)](
                          const wire::Response::Reader* r, const Error* e) {
      if (e) return promise->set_value(*e);
      if (r->isError()) {
        auto err = r->getError();
        return promise->set_value(
            Error{from_wire(err.getCode()), str(err.getMessage()), err.getRetryable()});
      }
      promise->set_value(decode(*r));
    };
    {
      std::lock_guard lock(mutex_);
      if (dead_) {
        Error e = dead_error_;
        handler(nullptr, &e);
        return future;
      }
      pending_.emplace(id, std::move(handler));
    }
    // The reply may arrive before send() returns: the handler is registered first.
    if (!send_all(frame.asBytes()))
      fail_all(
          Error{ErrorCode::connection_lost, std::string("send: ") + std::strerror(errno), true});
    return future;
  }

 private:
  bool send_all(kj::ArrayPtr<const kj::byte> bytes) {
    std::lock_guard lock(send_mutex_);
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.begin() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  void read_loop() {
    ipc::FrameDecoder decoder({options_.max_message_bytes, 1u << 16});
    std::vector<char> buf(64 * 1024);
    for (;;) {
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string why = n == 0 ? "memosd closed the connection" : std::strerror(errno);
        return fail_all(Error{ErrorCode::connection_lost, why, true});
      }
      std::vector<kj::Array<capnp::word>> frames;
      ipc::FrameError err = decoder.feed(
          std::span(reinterpret_cast<const std::byte*>(buf.data()), static_cast<std::size_t>(n)),
          frames);
      for (auto& frame : frames) {
        if (!deliver(frame)) return;
      }
      if (err != ipc::FrameError::none) {
        shutdown(fd_, SHUT_RDWR);
        return fail_all(protocol_error(std::string("reply: ") + ipc::describe(err)));
      }
    }
  }

  bool deliver(kj::Array<capnp::word>& frame) {
    Handler handler;
    kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
      capnp::FlatArrayMessageReader reader(
          frame, ipc::frame_reader_options(frame.size(), kReplyNestingLimit));
      auto response = reader.getRoot<wire::Response>();
      {
        std::lock_guard lock(mutex_);
        auto it = pending_.find(response.getId());
        if (it == pending_.end()) return;  // e.g. an error about an undecodable request
        handler = std::move(it->second);
        pending_.erase(it);
      }
      handler(&response, nullptr);
    });
    KJ_IF_MAYBE (e, failure) {
      Error error =
          protocol_error(std::string("reply does not decode: ") + e->getDescription().cStr());
      if (handler) handler(nullptr, &error);
      shutdown(fd_, SHUT_RDWR);
      fail_all(error);
      return false;
    }
    return true;
  }

  void fail_all(const Error& error) {
    std::map<std::uint64_t, Handler> failed;
    {
      std::lock_guard lock(mutex_);
      if (!dead_) {
        dead_ = true;
        dead_error_ = error;
      }
      failed.swap(pending_);
    }
    for (auto& [id, handler] : failed) handler(nullptr, &error);
  }

  int fd_;
  ClientOptions options_;
  std::atomic<std::uint64_t> next_id_{1};
  std::mutex send_mutex_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Handler> pending_;
  bool dead_ = false;
  Error dead_error_{ErrorCode::connection_lost, "", true};
  std::thread reader_;
};

// ---- Client -----------------------------------------------------------------

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::connect(const std::string& socket_path,
                                                ClientOptions options) {
  std::string path = socket_path.empty() ? default_socket() : socket_path;
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error{ErrorCode::connect_failed, "socket path too long: " + path, false};
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{ErrorCode::connect_failed, std::strerror(errno), true};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return Error{ErrorCode::connect_failed,
                 "cannot connect to " + path + ": " + std::strerror(err) +
                     (err == ENOENT || err == ECONNREFUSED ? " (is memosd running?)" : ""),
                 true};
  }
  return std::unique_ptr<Client>(new Client(std::make_unique<Impl>(fd, options)));
}

std::size_t Client::in_flight() const {
  return impl_->in_flight();
}

namespace {

template <class T>
Result<T> wrong_reply() {
  return protocol_error("reply does not match the request");
}

}  // namespace

std::future<Result<Status>> Client::status_async() {
  return impl_->call<Status>([](wire::Request::Builder r) { r.setStatus(); },
                             [](const wire::Response::Reader& r) -> Result<Status> {
                               if (!r.isStatus()) return wrong_reply<Status>();
                               auto s = r.getStatus();
                               Status out{
                                   str(s.getVersion()),   s.getPid(),          s.getUptimeMs(),
                                   s.getTenantUid(),      s.getCubes(),        s.getConnections(),
                                   s.getRequestsServed(), str(s.getDataDir()), str(s.getSocket())};
                               ReplyReader in;
                               for (auto p : s.getPlugins())
                                 out.plugins.push_back(to_plugin(in, p));
                               out.admin = s.getAdmin();
                               return in.finish(std::move(out));
                             });
}

std::future<Result<std::vector<PluginInfo>>> Client::plugin_list_async() {
  return impl_->call<std::vector<PluginInfo>>(
      [](wire::Request::Builder r) { r.setPluginList(); },
      [](const wire::Response::Reader& r) -> Result<std::vector<PluginInfo>> {
        if (!r.isPlugins()) return wrong_reply<std::vector<PluginInfo>>();
        ReplyReader in;
        std::vector<PluginInfo> out;
        for (auto p : r.getPlugins()) out.push_back(to_plugin(in, p));
        return in.finish(std::move(out));
      });
}

namespace {
Result<PluginInfo> decode_plugin(const wire::Response::Reader& r) {
  if (!r.isPlugin()) return wrong_reply<PluginInfo>();
  ReplyReader in;
  return in.finish(to_plugin(in, r.getPlugin()));
}
}  // namespace

std::future<Result<PluginInfo>> Client::plugin_info_async(std::string name) {
  return impl_->call<PluginInfo>([&](wire::Request::Builder r) { r.setPluginInfo(text(name)); },
                                 decode_plugin);
}

std::future<Result<PluginInfo>> Client::plugin_reload_async(std::string name) {
  return impl_->call<PluginInfo>([&](wire::Request::Builder r) { r.setPluginReload(text(name)); },
                                 decode_plugin);
}

namespace {
Result<Cube> decode_cube(const wire::Response::Reader& r) {
  if (!r.isCube()) return wrong_reply<Cube>();
  ReplyReader in;
  return in.finish(to_cube(in, r.getCube()));
}
Result<Item> decode_item(const wire::Response::Reader& r) {
  if (!r.isItem()) return wrong_reply<Item>();
  ReplyReader in;
  return in.finish(to_item(in, r.getItem()));
}
}  // namespace

std::future<Result<Cube>> Client::cube_create_async(std::string name,
                                                    std::optional<SearchMode> retriever,
                                                    std::string language) {
  return impl_->call<Cube>(
      [&](wire::Request::Builder r) {
        auto c = r.initCubeCreate();
        c.setName(text(name));
        // Empty on the wire: the daemon's search.default_mode.
        c.setRetriever(retriever ? to_string(*retriever) : "");
        c.setLanguage(text(language));
      },
      decode_cube);
}

std::future<Result<std::vector<Cube>>> Client::cube_list_async() {
  return impl_->call<std::vector<Cube>>(
      [](wire::Request::Builder r) { r.setCubeList(); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Cube>> {
        if (!r.isCubes()) return wrong_reply<std::vector<Cube>>();
        ReplyReader in;
        std::vector<Cube> cubes;
        for (auto c : r.getCubes()) cubes.push_back(to_cube(in, c));
        return in.finish(std::move(cubes));
      });
}

std::future<Result<Cube>> Client::cube_show_async(std::string name) {
  return impl_->call<Cube>([&](wire::Request::Builder r) { r.initCubeShow().setName(text(name)); },
                           decode_cube);
}

std::future<Result<Done>> Client::cube_remove_async(std::string name, bool force) {
  return impl_->call<Done>(
      [&](wire::Request::Builder r) {
        auto c = r.initCubeRemove();
        c.setName(text(name));
        c.setForce(force);
      },
      [](const wire::Response::Reader& r) -> Result<Done> {
        if (!r.isCubeRemoved()) return wrong_reply<Done>();
        return Done{};
      });
}

std::future<Result<Item>> Client::add_async(std::string cube, NewItem item) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto a = r.initAdd();
        a.setCube(text(cube));
        a.setText(text(item.text));
        set_texts(a.initTags(static_cast<unsigned>(item.tags.size())), item.tags);
        set_meta(a.initMeta(static_cast<unsigned>(item.meta.size())), item.meta);
        a.setImportance(item.importance);
        a.setTtlMs(item.ttl_ms);
        a.setValidFromMs(item.valid_from_ms);
        a.setValidToMs(item.valid_to_ms);
        a.setSessionId(text(item.session_id));
        auto sources = a.initSources(static_cast<unsigned>(item.sources.size()));
        for (unsigned i = 0; i < item.sources.size(); ++i) sources.set(i, item.sources[i]);
        a.setSupersedes(item.supersedes);
        r.setIdempotencyKey(text(item.idempotency_key));
      },
      decode_item);
}

std::future<Result<Item>> Client::get_async(std::string cube, std::uint64_t id,
                                            std::uint32_t version) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto g = r.initGet();
        g.setCube(text(cube));
        g.setItemId(id);
        g.setVersion(version);
      },
      decode_item);
}

std::future<Result<Item>> Client::update_async(std::string cube, std::uint64_t id,
                                               ItemChange change) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto u = r.initUpdate();
        u.setCube(text(cube));
        u.setItemId(id);
        u.setText(text(change.text));
        if (change.tags) {
          u.setReplaceTags(true);
          set_texts(u.initTags(static_cast<unsigned>(change.tags->size())), *change.tags);
        }
        if (change.meta) {
          u.setReplaceMeta(true);
          set_meta(u.initMeta(static_cast<unsigned>(change.meta->size())), *change.meta);
        }
        u.setSessionId(text(change.session_id));
        r.setIdempotencyKey(text(change.idempotency_key));
      },
      decode_item);
}

std::future<Result<Item>> Client::remove_async(std::string cube, std::uint64_t id,
                                               std::string idempotency_key) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        r.setIdempotencyKey(text(idempotency_key));
        auto x = r.initRemove();
        x.setCube(text(cube));
        x.setItemId(id);
      },
      decode_item);
}

// A history may be larger than one reply: it is read a page at a time
// (the protocol's HistoryPage), on a thread of its own so the future
// behaves as every other call's.
std::future<Result<std::vector<Item>>> Client::history_async(std::string cube, std::uint64_t id) {
  struct Page {
    std::vector<Item> versions;
    bool more = false;
  };
  auto page_after = [this, cube, id](std::uint32_t after) {
    return impl_
        ->call<Page>(
            [&](wire::Request::Builder r) {
              auto h = r.initHistory();
              h.setCube(text(cube));
              h.setItemId(id);
              h.setPaged(true);
              h.setPageAfter(after);
            },
            [](const wire::Response::Reader& r) -> Result<Page> {
              ReplyReader in;
              Page page;
              if (r.isHistory()) {  // a daemon that does not page: all of it
                for (auto i : r.getHistory()) page.versions.push_back(to_item(in, i));
              } else if (r.isHistoryPage()) {
                for (auto i : r.getHistoryPage().getVersions())
                  page.versions.push_back(to_item(in, i));
                page.more = r.getHistoryPage().getMore();
              } else {
                return wrong_reply<Page>();
              }
              return in.finish(std::move(page));
            })
        .get();
  };
  return std::async(std::launch::async, [page_after]() -> Result<std::vector<Item>> {
    std::vector<Item> all;
    for (std::uint32_t after = 0;;) {
      auto page = page_after(after);
      if (!page) return page.error();
      for (auto& v : page->versions) all.push_back(std::move(v));
      // A page is never empty while more remain; stop if a daemon says so.
      if (!page->more || page->versions.empty()) return all;
      after = all.back().version;
    }
  });
}

std::future<Result<std::vector<Hit>>> Client::search_async(std::string cube, std::string query,
                                                           SearchOptions options) {
  return impl_->call<std::vector<Hit>>(
      [&](wire::Request::Builder r) {
        auto s = r.initSearch();
        s.setCube(text(cube));
        s.setQuery(text(query));
        s.setK(options.k);
        set_texts(s.initTags(static_cast<unsigned>(options.tags.size())), options.tags);
        s.setAsOfMs(options.as_of_ms);
        s.setIncludeArchived(options.include_archived);
        s.setMode(options.mode ? to_string(*options.mode) : "");  // empty: the cube's default
        set_texts(s.initAnyTags(static_cast<unsigned>(options.any_tags.size())), options.any_tags);
        auto meta = s.initMeta(static_cast<unsigned>(options.meta.size()));
        for (unsigned i = 0; i < options.meta.size(); ++i) {
          meta[i].setKey(text(options.meta[i].key));
          meta[i].setValue(text(options.meta[i].value));
        }
        auto tiers = s.initTiers(static_cast<unsigned>(options.tiers.size()));
        for (unsigned i = 0; i < options.tiers.size(); ++i)
          tiers.set(i, ipc::to_wire(options.tiers[i]));
        auto states = s.initStates(static_cast<unsigned>(options.states.size()));
        for (unsigned i = 0; i < options.states.size(); ++i)
          states.set(i, ipc::to_wire(options.states[i]));
        s.setRecordedSinceMs(options.recorded_since_ms);
        s.setRecordedUntilMs(options.recorded_until_ms);
        s.setValidSinceMs(options.valid_since_ms);
        s.setValidUntilMs(options.valid_until_ms);
        s.setExplain(options.explain);
        set_texts(s.initCubes(static_cast<unsigned>(options.more_cubes.size())),
                  options.more_cubes);
        s.setRecencyWeight(options.recency_weight);
        s.setImportanceWeight(options.importance_weight);
        s.setMmrLambda(options.mmr_lambda);
      },
      [](const wire::Response::Reader& r) -> Result<std::vector<Hit>> {
        if (!r.isHits()) return wrong_reply<std::vector<Hit>>();
        ReplyReader in;
        std::vector<Hit> hits;
        for (auto h : r.getHits()) {
          Hit hit{to_item(in, h.getItem()), h.getScore(), str(h.getCube()), {}};
          for (auto rank : h.getRanks()) {
            hit.ranks.push_back(
                {in.search_mode(rank.getRetriever()), rank.getRank(), rank.getScore()});
          }
          hits.push_back(std::move(hit));
        }
        return in.finish(std::move(hits));
      });
}

std::future<Result<Item>> Client::set_state_async(std::string cube, std::uint64_t id, State state) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto x = r.initSetState();
        x.setCube(text(cube));
        x.setItemId(id);
        x.setState(ipc::to_wire(state));
      },
      decode_item);
}

std::future<Result<Item>> Client::rollback_async(std::string cube, std::uint64_t id,
                                                 std::uint32_t version) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto x = r.initRollback();
        x.setCube(text(cube));
        x.setItemId(id);
        x.setVersion(version);
      },
      decode_item);
}

std::future<Result<ItemDiff>> Client::diff_async(std::string cube, std::uint64_t id,
                                                 std::uint32_t from, std::uint32_t to) {
  return impl_->call<ItemDiff>(
      [&](wire::Request::Builder r) {
        auto x = r.initDiff();
        x.setCube(text(cube));
        x.setItemId(id);
        x.setFromVersion(from);
        x.setToVersion(to);
      },
      [](const wire::Response::Reader& r) -> Result<ItemDiff> {
        if (!r.isDiff()) return wrong_reply<ItemDiff>();
        auto d = r.getDiff();
        ReplyReader in;
        ItemDiff diff;
        diff.from = to_item(in, d.getFrom());
        diff.to = to_item(in, d.getTo());
        diff.text_changed = d.getTextChanged();
        for (auto t : d.getTagsAdded()) diff.tags_added.push_back(str(t));
        for (auto t : d.getTagsRemoved()) diff.tags_removed.push_back(str(t));
        for (auto m : d.getMetaChanges()) {
          MetaChange change{str(m.getKey()), std::nullopt, std::nullopt};
          if (m.getHadBefore()) change.before = str(m.getBefore());
          if (m.getHasAfter()) change.after = str(m.getAfter());
          diff.meta_changes.push_back(std::move(change));
        }
        diff.state_changed = d.getStateChanged();
        diff.validity_changed = d.getValidityChanged();
        return in.finish(std::move(diff));
      });
}

std::future<Result<Snapshot>> Client::snapshot_create_async(std::string cube, std::string tag) {
  return impl_->call<Snapshot>(
      [&](wire::Request::Builder r) {
        auto x = r.initSnapshotCreate();
        x.setCube(text(cube));
        x.setTag(text(tag));
      },
      [](const wire::Response::Reader& r) -> Result<Snapshot> {
        if (!r.isSnapshot()) return wrong_reply<Snapshot>();
        return to_snapshot(r.getSnapshot());
      });
}

std::future<Result<std::vector<Snapshot>>> Client::snapshot_list_async(std::string cube) {
  return impl_->call<std::vector<Snapshot>>(
      [&](wire::Request::Builder r) { r.initSnapshotList().setName(text(cube)); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Snapshot>> {
        if (!r.isSnapshots()) return wrong_reply<std::vector<Snapshot>>();
        std::vector<Snapshot> out;
        for (auto s : r.getSnapshots()) out.push_back(to_snapshot(s));
        return out;
      });
}

std::future<Result<std::vector<SnapshotChange>>> Client::snapshot_diff_async(std::string cube,
                                                                             std::string from_tag,
                                                                             std::string to_tag) {
  return impl_->call<std::vector<SnapshotChange>>(
      [&](wire::Request::Builder r) {
        auto x = r.initSnapshotDiff();
        x.setCube(text(cube));
        x.setFromTag(text(from_tag));
        x.setToTag(text(to_tag));
      },
      [](const wire::Response::Reader& r) -> Result<std::vector<SnapshotChange>> {
        if (!r.isChanges()) return wrong_reply<std::vector<SnapshotChange>>();
        std::vector<SnapshotChange> out;
        for (auto c : r.getChanges()) {
          auto kind = static_cast<unsigned>(c.getKind());
          out.push_back(
              {c.getItemId(),
               kind <= 2 ? static_cast<SnapshotChange::Kind>(kind) : SnapshotChange::Kind::changed,
               c.getFromVersion(), c.getToVersion(), str(c.getText())});
        }
        return out;
      });
}

Result<std::uint64_t> Client::export_cube(const std::string& cube,
                                          const std::function<bool(std::string_view)>& write) {
  struct Chunk {
    std::string data, cursor;
    bool done = false;
  };
  std::string cursor;
  std::uint64_t total = 0;
  for (;;) {
    auto r = impl_
                 ->call<Chunk>(
                     [&](wire::Request::Builder req) {
                       auto x = req.initExportChunk();
                       x.setCube(text(cube));
                       x.setCursor(capnp::Data::Reader(
                           reinterpret_cast<const kj::byte*>(cursor.data()), cursor.size()));
                     },
                     [](const wire::Response::Reader& resp) -> Result<Chunk> {
                       if (!resp.isArchiveChunk()) return wrong_reply<Chunk>();
                       auto c = resp.getArchiveChunk();
                       auto data = c.getData(), next = c.getCursor();
                       return Chunk{
                           std::string(reinterpret_cast<const char*>(data.begin()), data.size()),
                           std::string(reinterpret_cast<const char*>(next.begin()), next.size()),
                           c.getDone()};
                     })
                 .get();
    if (!r) return r.error();
    if (!write(r->data)) return Error{ErrorCode::bad_request, "stopped by the writer", false};
    total += r->data.size();
    if (r->done) return total;
    cursor = std::move(r->cursor);
  }
}

Result<Cube> Client::import_cube(const std::function<std::size_t(char*, std::size_t)>& read,
                                 const std::string& name) {
  auto session = impl_
                     ->call<std::uint64_t>(
                         [&](wire::Request::Builder r) { r.initImportBegin().setName(text(name)); },
                         [](const wire::Response::Reader& r) -> Result<std::uint64_t> {
                           if (!r.isImportSession()) return wrong_reply<std::uint64_t>();
                           return r.getImportSession();
                         })
                     .get();
  if (!session) return session.error();
  std::string buffer(1 << 20, '\0');
  for (;;) {
    std::size_t n = read(buffer.data(), buffer.size());
    if (n == 0) break;
    auto sent = impl_
                    ->call<std::uint64_t>(
                        [&](wire::Request::Builder r) {
                          auto x = r.initImportChunk();
                          x.setSession(*session);
                          x.setData(capnp::Data::Reader(
                              reinterpret_cast<const kj::byte*>(buffer.data()), n));
                        },
                        [](const wire::Response::Reader& r) -> Result<std::uint64_t> {
                          if (!r.isImportProgress()) return wrong_reply<std::uint64_t>();
                          return r.getImportProgress();
                        })
                    .get();
    if (!sent) return sent.error();
  }
  return impl_
      ->call<Cube>([&](wire::Request::Builder r) { r.setImportFinish(*session); }, decode_cube)
      .get();
}

// ---- generation and the activation tier ----------------------------------------

namespace {

Activation to_activation(wire::Activation::Reader a) {
  Activation out;
  out.id = a.getId();
  out.cube = str(a.getCube());
  out.model = str(a.getModel());
  out.model_hash = str(a.getModelHash());
  out.kv_type = str(a.getKvType());
  out.tokens = a.getTokens();
  out.bytes = a.getBytes();
  for (std::uint64_t id : a.getSources()) out.sources.push_back(id);
  out.created_at_ms = a.getCreatedAtMs();
  out.last_used_ms = a.getLastUsedMs();
  out.uses = a.getUses();
  out.prefill_ms = a.getPrefillMs();
  return out;
}

Result<Activation> decode_activation(const wire::Response::Reader& r) {
  if (!r.isActivation()) return wrong_reply<Activation>();
  return to_activation(r.getActivation());
}

}  // namespace

std::future<Result<ChatReply>> Client::chat_async(std::string cube, std::string prompt,
                                                  ChatOptions options) {
  return impl_->call<ChatReply>(
      [&](wire::Request::Builder r) {
        auto c = r.initChat();
        c.setCube(text(cube));
        c.setPrompt(text(prompt));
        c.setK(options.k);
        auto ids = c.initIds(static_cast<unsigned>(options.ids.size()));
        for (unsigned i = 0; i < ids.size(); ++i) ids.set(i, options.ids[i]);
        c.setMode(options.mode ? to_string(*options.mode) : "");  // empty: the cube's default
        c.setActivate(options.activate);
        c.setNoReuse(options.no_reuse);
        c.setMaxTokens(options.max_tokens);
        c.setTemperature(options.temperature);
        c.setTopK(options.top_k);
        c.setTopP(options.top_p);
        c.setSeed(options.seed);
      },
      [](const wire::Response::Reader& r) -> Result<ChatReply> {
        if (!r.isChat()) return wrong_reply<ChatReply>();
        auto c = r.getChat();
        ReplyReader in;
        ChatReply out;
        out.text = str(c.getText());
        for (std::uint64_t id : c.getMemories()) out.memories.push_back(id);
        out.prompt_tokens = c.getPromptTokens();
        out.block_tokens = c.getBlockTokens();
        out.reused_tokens = c.getReusedTokens();
        out.generated_tokens = c.getGeneratedTokens();
        in.activation_status(c.getActivationStatus(), &out);
        out.activation = c.getActivation();
        out.restore_ms = c.getRestoreMs();
        out.prefill_ms = c.getPrefillMs();
        out.first_token_ms = c.getFirstTokenMs();
        out.total_ms = c.getTotalMs();
        out.finish = str(c.getFinish());
        out.resident = c.getResident();
        out.format = str(c.getFormat());
        return in.finish(std::move(out));
      });
}

std::future<Result<Activation>> Client::kv_prefill_async(std::string cube,
                                                         std::vector<std::uint64_t> ids,
                                                         std::uint32_t top) {
  return impl_->call<Activation>(
      [&](wire::Request::Builder r) {
        auto p = r.initKvPrefill();
        p.setCube(text(cube));
        auto list = p.initIds(static_cast<unsigned>(ids.size()));
        for (unsigned i = 0; i < list.size(); ++i) list.set(i, ids[i]);
        p.setTop(top);
      },
      decode_activation);
}

std::future<Result<std::vector<Activation>>> Client::kv_list_async(std::string cube) {
  return impl_->call<std::vector<Activation>>(
      [&](wire::Request::Builder r) { r.initKvList().setName(text(cube)); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Activation>> {
        if (!r.isActivations()) return wrong_reply<std::vector<Activation>>();
        std::vector<Activation> out;
        for (auto a : r.getActivations()) out.push_back(to_activation(a));
        return out;
      });
}

std::future<Result<Activation>> Client::kv_remove_async(std::string cube, std::uint64_t id) {
  return impl_->call<Activation>(
      [&](wire::Request::Builder r) {
        auto x = r.initKvRemove();
        x.setCube(text(cube));
        x.setItemId(id);
      },
      decode_activation);
}

std::future<Result<KvStats>> Client::kv_stats_async() {
  return impl_->call<KvStats>([](wire::Request::Builder r) { r.setKvStats(); },
                              [](const wire::Response::Reader& r) -> Result<KvStats> {
                                if (!r.isKvStats()) return wrong_reply<KvStats>();
                                auto k = r.getKvStats();
                                KvStats out;
                                out.model = str(k.getModel());
                                out.model_hash = str(k.getModelHash());
                                out.kv_type = str(k.getKvType());
                                out.context_tokens = k.getContextTokens();
                                out.chunk_tokens = k.getChunkTokens();
                                out.items = k.getItems();
                                out.bytes = k.getBytes();
                                out.tenant_max_bytes = k.getTenantMaxBytes();
                                out.resident_states = k.getResidentStates();
                                out.resident_bytes = k.getResidentBytes();
                                out.resident_budget_bytes = k.getResidentBudgetBytes();
                                out.resident_hits = k.getResidentHits();
                                out.resident_misses = k.getResidentMisses();
                                out.rejected_states = k.getRejectedStates();
                                return out;
                              });
}

}  // namespace memos
