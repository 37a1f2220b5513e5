#include "kernel/status.h"

namespace memos::kernel {

Status Status::from(const store::Status& s) {
  using store::Errc;
  switch (s.code) {
    case Errc::ok:
      return {};
    case Errc::not_found:
      return {Code::not_found, s.message, false};
    case Errc::already_exists:
      return {Code::already_exists, s.message, false};
    case Errc::conflict:
      return {Code::conflict, s.message, false};
    case Errc::storage_full:
    case Errc::map_full:
      return {Code::storage_full, s.message, true};
    case Errc::unavailable:
      return {Code::unavailable, s.message, true};
    case Errc::quota_exceeded:
      return {Code::quota_exceeded, s.message, false};
    case Errc::permission_denied:
      return {Code::permission_denied, s.message, false};
    case Errc::corrupt:
    case Errc::io:
      break;
  }
  return {Code::internal, s.message, false};
}

Status& Status::prefixed(std::string_view what) {
  if (!ok()) message = std::string(what) + ": " + message;
  return *this;
}

const char* to_string(Code code) {
  switch (code) {
    case Code::ok:
      return "ok";
    case Code::bad_request:
      return "badRequest";
    case Code::not_found:
      return "notFound";
    case Code::already_exists:
      return "alreadyExists";
    case Code::too_large:
      return "tooLarge";
    case Code::busy:
      return "busy";
    case Code::unavailable:
      return "unavailable";
    case Code::internal:
      return "internal";
    case Code::conflict:
      return "conflict";
    case Code::permission_denied:
      return "permissionDenied";
    case Code::storage_full:
      return "storageFull";
    case Code::quota_exceeded:
      return "quotaExceeded";
    case Code::rate_limited:
      return "rateLimited";
  }
  return "unknown";
}

}  // namespace memos::kernel
