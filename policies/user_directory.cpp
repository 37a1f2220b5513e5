#include "policies/user_directory.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace memos::policies {
namespace {

// getpw*_r and getgr*_r want a buffer; a group with thousands of members
// needs a large one, so grow it on ERANGE (up to 16 MiB).
constexpr std::size_t kMaxBuffer = 16u << 20;

std::size_t initial_size(int which) {
  long n = sysconf(which);
  return n > 0 ? static_cast<std::size_t>(n) : 16384;
}

std::optional<passwd> find_user(const std::string& name, std::vector<char>* buf, std::string* why) {
  buf->resize(initial_size(_SC_GETPW_R_SIZE_MAX));
  for (;;) {
    passwd pw{};
    passwd* found = nullptr;
    int rc = getpwnam_r(name.c_str(), &pw, buf->data(), buf->size(), &found);
    if (rc == ERANGE && buf->size() < kMaxBuffer) {
      buf->resize(buf->size() * 2);
      continue;
    }
    if (rc != 0) {
      if (why) *why = std::strerror(rc);
      return std::nullopt;
    }
    if (!found) return std::nullopt;
    return pw;
  }
}

}  // namespace

std::optional<std::uint32_t> SystemDirectory::user(const std::string& name,
                                                   std::string* why) const {
  std::vector<char> buf;
  auto pw = find_user(name, &buf, why);
  if (!pw) return std::nullopt;
  return static_cast<std::uint32_t>(pw->pw_uid);
}

std::optional<std::vector<std::uint32_t>> SystemDirectory::group(const std::string& name,
                                                                 std::string* why) const {
  std::vector<char> buf(initial_size(_SC_GETGR_R_SIZE_MAX));
  struct group gr {};
  struct group* found = nullptr;
  for (;;) {
    int rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) {
      if (why) *why = std::strerror(rc);
      return std::nullopt;
    }
    break;
  }
  if (!found) return std::nullopt;
  std::vector<std::uint32_t> uids;
  std::vector<char> user_buf;
  for (char** member = gr.gr_mem; member && *member; ++member) {
    std::string ignored;
    if (auto pw = find_user(*member, &user_buf, &ignored)) uids.push_back(pw->pw_uid);
  }
  // Users whose primary group it is are not listed as its members. The
  // scan is not thread-safe (getpwent's cursor is the process's): policies
  // load on one thread, and nothing else in memosd walks the user list.
  setpwent();
  while (passwd* pw = getpwent()) {
    if (pw->pw_gid == gr.gr_gid) uids.push_back(pw->pw_uid);
  }
  endpwent();
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}

std::string SystemDirectory::user_name(std::uint32_t uid) const {
  std::vector<char> buf(initial_size(_SC_GETPW_R_SIZE_MAX));
  for (;;) {
    passwd pw{};
    passwd* found = nullptr;
    int rc = getpwuid_r(uid, &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    return rc == 0 && found ? std::string(pw.pw_name) : std::string();
  }
}

}  // namespace memos::policies
