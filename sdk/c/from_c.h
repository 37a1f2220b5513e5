// sdk/c/from_c.h — the C API's arguments as the C++ SDK's values.
//
// A NULL string reads as "". An argument the C++ types cannot hold (a NULL
// array with a count, an enum value out of range, a route that does not
// parse) throws BadArgument, which the call answers as MEMOS_BAD_REQUEST
// naming the field; nothing is sent.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "memos/client.h"
#include "memos/memos.h"

namespace memos::c_api {

struct BadArgument : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string text(const char* s);
std::vector<std::uint64_t> ids(const std::uint64_t* data, std::size_t n, const char* field);
// -1: none; else a SearchMode.
std::optional<SearchMode> search_mode(int mode, const char* field);
State state(int value, const char* field);

ClientOptions client_options(const memos_client_options* options);
NewItem new_item(const memos_new_item* item);
ItemChange item_change(const memos_item_change* change);
SearchOptions search_options(const memos_search_options* options);
ChatOptions chat_options(const memos_chat_options* options);
DistillArgs distill_args(const memos_distill_args* args);

}  // namespace memos::c_api
