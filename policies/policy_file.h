// policy_file.h — one tenant policy file: TOML, read and checked whole.
//
// Every problem is reported as a Diagnostic, at the file:line:column of
// the key or value it concerns (file:1:1 for the file as a whole), and
// parsing goes on past an error so that one check names them all. A
// policy with any error is not used (the caller refuses the whole folder);
// warnings (a group with no members) do not stop it.
//
// What is refused: a file over 1 MiB, TOML syntax errors, an unknown key
// (named), a value of the wrong type or out of its range, names with
// characters a tenant or plugin name cannot have, users and groups the
// directory does not know, reserved tables ([scheduler], [router]) deeper
// than 4 levels or over 256 values, and in default.toml the keys that name
// peers (the default covers peers no other file claims) or role = "admin".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policies/policy.h"
#include "policies/user_directory.h"

namespace memos::policies {

struct Diagnostic {
  std::string where;  // "file:line:column"
  std::string message;
  bool warning = false;

  std::string text() const { return where + ": " + (warning ? "warning: " : "") + message; }
};

inline bool has_errors(const std::vector<Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) {
    if (!d.warning) return true;
  }
  return false;
}

constexpr std::size_t kMaxPolicyFileBytes = 1u << 20;

// Parses `text` as the policy file `path` (its name decides whether it is
// default.toml and, without a `tenant` key, the tenant's name). Appends
// what it finds to `*diagnostics`; returns whether `*out` is usable (no
// errors).
bool parse_policy(std::string_view text, const std::string& path, const UserDirectory& users,
                  TenantPolicy* out, std::vector<Diagnostic>* diagnostics);

// Reads `path` whole into `*text`: a regular file of at most
// kMaxPolicyFileBytes (a folder, a device or a FIFO is refused before
// reading). On failure appends the reason to `*diagnostics`.
bool read_policy_text(const std::string& path, std::string* text,
                      std::vector<Diagnostic>* diagnostics);

// read_policy_text(), then parse_policy().
bool read_policy_file(const std::string& path, const UserDirectory& users, TenantPolicy* out,
                      std::vector<Diagnostic>* diagnostics);

// Whether `name` may name a tenant: 1 to 64 of [A-Za-z0-9._-], not
// starting with a dot or a dash ("default" is the default policy's file).
bool valid_tenant_name(std::string_view name);

}  // namespace memos::policies
