// The query-time memory modules' pieces (kernel/routing): routes as text,
// the words they compare, pseudo-relevance feedback, extractive
// compression, and the store's neighbours lookup the expand module reads.
#define BOOST_TEST_MODULE routing
#include <boost/test/unit_test.hpp>
#include <random>
#include <string>
#include <vector>

#include "kernel/handlers/route_args.h"
#include "kernel/routing/context.h"
#include "kernel/routing/feedback_terms.h"
#include "kernel/routing/model_tiers.h"
#include "kernel/routing/words.h"
#include "memos/vocabulary.h"
#include "tests/support/memosd_process.h"
#include "tests/support/store_helpers.h"

using memos::CostTier;
using memos::Module;
using memos::Route;
using memos::kernel::routing::compress_extractive;
using memos::kernel::routing::content_words;
using memos::kernel::routing::ContextPiece;
using memos::kernel::routing::estimate_tokens;
using memos::kernel::routing::feedback_terms;
using memos::kernel::routing::FeedbackInput;

namespace {

std::uint32_t total_tokens(const std::vector<ContextPiece>& pieces) {
  std::uint32_t sum = 0;
  for (const auto& p : pieces) sum += p.tokens;
  return sum;
}

ContextPiece piece(std::uint64_t id, std::string text) {
  ContextPiece p;
  p.cube = 1;
  p.id = id;
  p.tokens = estimate_tokens(text);
  p.text = std::move(text);
  return p;
}

}  // namespace

// ---- routes ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(routes_print_and_parse_back) {
  const CostTier tiers[] = {CostTier::low, CostTier::mid, CostTier::high};
  for (CostTier a : tiers)
    for (CostTier b : tiers)
      for (CostTier c : tiers)
        for (CostTier d : tiers) {
          Route r{{a, b, c, d}};
          auto back = memos::parse_route(memos::to_string(r));
          BOOST_REQUIRE(back);
          BOOST_TEST((*back == r));
        }
  BOOST_TEST(memos::to_string(Route{}) == "retrieve=mid,temporal=mid,expand=mid,compress=mid");
}

BOOST_AUTO_TEST_CASE(a_route_names_some_modules_over_a_base) {
  auto r = memos::parse_route("expand=low,retrieve=high", Route::all(CostTier::mid));
  BOOST_REQUIRE(r);
  BOOST_TEST(((*r)[Module::retrieve] == CostTier::high));
  BOOST_TEST(((*r)[Module::temporal] == CostTier::mid));
  BOOST_TEST(((*r)[Module::expand] == CostTier::low));
  // Empty text: the base itself.
  BOOST_TEST((memos::parse_route("", Route::all(CostTier::low)) == Route::all(CostTier::low)));
}

BOOST_AUTO_TEST_CASE(malformed_routes_are_refused) {
  for (const char* bad :
       {"retrieve", "retrieve=", "=mid", "retrieve=mid,", ",retrieve=mid",
        "retrieve=mid,,expand=low", "retrieve=medium", "Retrieve=mid", "retrieve=mid,retrieve=low",
        "answer=high", "retrieve = mid", "retrieve=mid;expand=low", "retrieve=mid=low"}) {
    BOOST_TEST_INFO(bad);
    BOOST_TEST(!memos::parse_route(bad));
  }
  // Oversized and binary input: refused, in time linear in its length.
  std::string huge(1 << 20, ',');
  BOOST_TEST(!memos::parse_route(huge));
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string noise(rng() % 40, '\0');
    for (auto& ch : noise) ch = static_cast<char>(rng());
    (void)memos::parse_route(noise);  // never crashes (ASan/UBSan build)
  }
}

BOOST_AUTO_TEST_CASE(a_chats_route_names_its_answer_beside_the_memory_modules) {
  std::optional<CostTier> answer;
  auto r = memos::parse_route("answer=high,retrieve=low", Route{}, &answer);
  BOOST_REQUIRE(r);
  BOOST_TEST(((*r)[Module::retrieve] == CostTier::low));
  BOOST_TEST((answer == CostTier::high));
  BOOST_TEST(!memos::parse_route("answer=high,answer=low", Route{}, &answer));
  BOOST_TEST(!memos::parse_route("answer=top", Route{}, &answer));
  BOOST_TEST(memos::to_string(Module::answer) == std::string("answer"));
}

BOOST_AUTO_TEST_CASE(a_budget_sets_the_answer_tier_and_auto_fixes_only_the_answer) {
  using memos::kernel::read_route_args;
  using memos::kernel::RouteArgs;
  RouteArgs args;
  BOOST_REQUIRE(read_route_args("high", "", 0, 0, 0, &args).ok());
  BOOST_TEST((args.answer == CostTier::high));
  BOOST_TEST(!args.answer_named);
  BOOST_REQUIRE(read_route_args("high", "answer=low", 0, 0, 0, &args).ok());
  BOOST_TEST((args.answer == CostTier::low));
  BOOST_TEST(args.answer_named);
  BOOST_TEST(((*args.route)[Module::retrieve] == CostTier::high));
  // A fixed route without a budget (the SDK's): answer mid unless named.
  BOOST_REQUIRE(
      read_route_args("", "retrieve=low,temporal=low,expand=low,compress=low", 0, 0, 0, &args)
          .ok());
  BOOST_TEST((args.answer == CostTier::mid));
  // auto: the router's memory modules, and the answer the route names.
  BOOST_REQUIRE(read_route_args("auto", "answer=high", 0, 0, 0, &args).ok());
  BOOST_TEST(args.auto_route);
  BOOST_TEST((args.answer == CostTier::high));
  BOOST_REQUIRE(read_route_args("auto", "", 0, 0, 0, &args).ok());
  BOOST_TEST(!args.answer);
  for (const char* bad : {"retrieve=mid", "answer=high,expand=low", "answer=mid,answer=mid"}) {
    BOOST_TEST_INFO(bad);
    BOOST_TEST(
        (read_route_args("auto", bad, 0, 0, 0, &args).code == memos::kernel::Code::bad_request));
  }
}

// ---- words -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(content_words_are_lower_cased_and_skip_short_and_function_words) {
  std::vector<std::string> want = {"caroline", "researched", "adoption", "agencies", "2023"};
  BOOST_TEST(content_words("What has Caroline researched? ADOPTION agencies, in 2023!") == want);
  BOOST_TEST(content_words("").empty());
  BOOST_TEST(content_words("a an of to the and what").empty());
  // UTF-8 bytes are word bytes, kept as they are.
  BOOST_TEST(content_words("Café über") == (std::vector<std::string>{"café", "über"}));
}

// ---- pseudo-relevance feedback ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(feedback_adds_the_words_the_best_hits_share_and_the_pool_lacks) {
  FeedbackInput in;
  in.query = "What is Caroline researching?";
  in.feedback = {"Caroline: I have been looking into adoption agencies lately",
                 "Melanie: adoption agencies take months, Caroline",
                 "Caroline: the weather is nice"};
  in.pool = {in.feedback[0],
             in.feedback[1],
             in.feedback[2],
             "Melanie: painting is fun",
             "Melanie: the weather is nice today",
             "Caroline: I went swimming",
             "Melanie: my kids love the beach",
             "Caroline: the beach was crowded"};
  in.max_terms = 2;
  auto terms = feedback_terms(in);
  BOOST_TEST(terms == (std::vector<std::string>{"adoption", "agencies"}));
  // Never a query word; never more than asked.
  in.max_terms = 50;
  for (const auto& t : feedback_terms(in)) BOOST_TEST(t != "caroline");
  // A word that must occur in two feedback hits.
  in.min_documents = 2;
  in.max_terms = 5;
  BOOST_TEST(feedback_terms(in) == (std::vector<std::string>{"adoption", "agencies"}));
}

BOOST_AUTO_TEST_CASE(feedback_without_hits_or_words_adds_nothing) {
  FeedbackInput in;
  in.query = "anything";
  BOOST_TEST(feedback_terms(in).empty());
  in.feedback = {"", "!!! ???", "a an of"};
  in.pool = in.feedback;
  BOOST_TEST(feedback_terms(in).empty());
  in.feedback = {"green apples"};
  in.pool = {};  // a pool that omits the feedback: each word counts once
  in.max_terms = 0;
  BOOST_TEST(feedback_terms(in).empty());
  in.max_terms = 3;
  // Equal weights: in word order.
  BOOST_TEST(feedback_terms(in) == (std::vector<std::string>{"apples", "green"}));
}

BOOST_AUTO_TEST_CASE(a_word_in_most_of_the_pool_is_never_added) {
  FeedbackInput in;
  in.query = "q";
  in.feedback = {"okay sure okay", "okay thanks"};
  in.pool = {"okay sure okay", "okay thanks", "okay", "okay then", "fine"};
  for (const auto& t : feedback_terms(in)) BOOST_TEST(t != "okay");
}

// ---- compression --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(tokens_are_a_quarter_of_the_bytes_rounded_up) {
  BOOST_TEST(estimate_tokens("") == 0u);
  BOOST_TEST(estimate_tokens("a") == 1u);
  BOOST_TEST(estimate_tokens("abcd") == 1u);
  BOOST_TEST(estimate_tokens("abcde") == 2u);
}

BOOST_AUTO_TEST_CASE(a_context_within_budget_is_left_whole) {
  std::vector<ContextPiece> pieces = {piece(1, "One. Two."), piece(2, "Three.")};
  auto before = pieces;
  compress_extractive("two", 100, &pieces);
  BOOST_REQUIRE(pieces.size() == 2u);
  BOOST_TEST(pieces[0].text == before[0].text);
  BOOST_TEST(pieces[1].text == before[1].text);
}

BOOST_AUTO_TEST_CASE(compression_keeps_the_sentences_with_the_query_words_within_budget) {
  std::vector<ContextPiece> pieces = {
      piece(1, "Caroline: Hi there! How are you doing today? I went to a support group."),
      piece(2, "Melanie: That sounds lovely. The kids painted pottery yesterday."),
      piece(3, "Caroline: The adoption agency called back. They want references.")};
  compress_extractive("When did Caroline talk to the adoption agency?", 20, &pieces);
  BOOST_TEST(total_tokens(pieces) <= 20u);
  BOOST_REQUIRE(!pieces.empty());
  bool kept = false;
  for (const auto& p : pieces) {
    BOOST_TEST(p.tokens == estimate_tokens(p.text));
    if (p.id == 3) kept = p.text.find("adoption agency called back") != std::string::npos;
  }
  BOOST_TEST(kept);
  // Pieces keep their order.
  for (std::size_t i = 1; i < pieces.size(); ++i) BOOST_TEST(pieces[i - 1].id < pieces[i].id);
}

BOOST_AUTO_TEST_CASE(compression_never_empties_a_context_and_bounds_every_budget) {
  std::mt19937 rng(11);
  const char* words[] = {"alpha", "beta", "gamma.", "delta!", "eps?", "zeta\n", "eta", " "};
  for (int round = 0; round < 300; ++round) {
    std::vector<ContextPiece> pieces;
    const std::size_t n = rng() % 12;
    for (std::size_t i = 0; i < n; ++i) {
      std::string text;
      for (std::size_t w = rng() % 40; w > 0; --w) text += std::string(words[rng() % 8]) + " ";
      pieces.push_back(piece(i + 1, text));
    }
    const std::uint32_t budget = 1 + rng() % 80;
    bool any_sentence = false;
    for (const auto& p : pieces)
      any_sentence |= p.text.find_first_not_of(" \n") != std::string::npos;
    const std::uint32_t before = total_tokens(pieces);
    compress_extractive("beta delta", budget, &pieces);
    if (before <= budget) continue;
    BOOST_TEST(pieces.empty() != any_sentence);
    // Over budget only when one sentence alone is larger, and then it is all.
    if (total_tokens(pieces) > budget) BOOST_TEST(pieces.size() == 1u);
  }
  // One sentence far over budget: kept whole, the context is never empty.
  std::vector<ContextPiece> one = {piece(1, std::string(100000, 'x'))};
  compress_extractive("x", 16, &one);
  BOOST_REQUIRE(one.size() == 1u);
  BOOST_TEST(one[0].text.size() == 100000u);
}

// ---- the store's neighbours -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(neighbours_are_the_nearest_live_heads_in_id_order) {
  memos::testing::TempDir dir;
  auto store = memos::testing::open_store(dir.path());
  memos::store::Cube cube, other;
  BOOST_REQUIRE(memos::testing::write(*store, [&](memos::store::WriteTxn& t) {
                  auto s = t.create_cube(1000, "a", "hash-v1", 8, 1, &cube);
                  return s.ok() ? t.create_cube(1000, "b", "hash-v1", 8, 1, &other) : s;
                }).ok());
  std::vector<memos::store::Item> items(6);
  for (std::size_t i = 0; i < items.size(); ++i) {
    BOOST_REQUIRE(memos::testing::write(*store, [&](memos::store::WriteTxn& t) {
                    memos::store::ItemDraft d;
                    d.text = "turn " + std::to_string(i);
                    // Another cube's item between two of this one's.
                    memos::store::Item skip;
                    auto s = t.add_item(other.id, d, 0, 1, &skip);
                    return s.ok() ? t.add_item(cube.id, d, 0, 1, &items[i]) : s;
                  }).ok());
  }
  memos::store::Item tomb;
  BOOST_REQUIRE(memos::testing::write(*store, [&](memos::store::WriteTxn& t) {
                  return t.remove_item(cube.id, items[2].id, 1000, 2, &tomb);
                }).ok());
  std::optional<memos::store::ReadTxn> txn;
  BOOST_REQUIRE(store->begin_read(&txn).ok());
  std::vector<memos::store::Item> earlier, later;
  BOOST_REQUIRE(txn->neighbours(cube.id, items[3].id, 2, 2, &earlier, &later).ok());
  BOOST_REQUIRE(earlier.size() == 2u);  // the removed items[2] is skipped
  BOOST_TEST(earlier[0].id == items[1].id);
  BOOST_TEST(earlier[1].id == items[0].id);
  BOOST_REQUIRE(later.size() == 2u);
  BOOST_TEST(later[0].id == items[4].id);
  BOOST_TEST(later[1].id == items[5].id);
  // At the ends, and for an id no item has (between two of them).
  BOOST_REQUIRE(txn->neighbours(cube.id, items[0].id, 3, 0, &earlier, &later).ok());
  BOOST_TEST(earlier.empty());
  BOOST_TEST(later.empty());
  BOOST_REQUIRE(txn->neighbours(cube.id, items[5].id, 0, 3, &earlier, &later).ok());
  BOOST_TEST(later.empty());
  BOOST_REQUIRE(txn->neighbours(cube.id, items[4].id + 1, 1, 1, &earlier, &later).ok());
  BOOST_REQUIRE(earlier.size() == 1u);
  BOOST_TEST(earlier[0].id == items[4].id);
  BOOST_REQUIRE(later.size() == 1u);
  BOOST_TEST(later[0].id == items[5].id);
  // A cube with no items, and ids past every key of the table.
  BOOST_REQUIRE(txn->neighbours(other.id + 100, 1, 5, 5, &earlier, &later).ok());
  BOOST_TEST(earlier.empty());
  BOOST_TEST(later.empty());
  BOOST_REQUIRE(txn->neighbours(other.id, ~0ull, 1, 1, &earlier, &later).ok());
  BOOST_TEST(earlier.size() == 1u);
  BOOST_TEST(later.empty());
}

// ---- the executor's tiers (model_tiers.h), over a scripted model ----------

namespace {

using memos::kernel::Status;
using memos::kernel::routing::ModelReader;

// Answers each ask with the next scripted answer (or fails once they run
// out), and keeps what it was asked.
class ScriptedModel final : public ModelReader {
 public:
  explicit ScriptedModel(std::vector<std::string> answers) : answers_(std::move(answers)) {}
  Status ask(std::string_view instruction, std::string_view input, std::uint32_t max_tokens,
             std::string* out) override {
    asked.push_back(std::string(instruction) + " | " + std::string(input));
    limits.push_back(max_tokens);
    if (next_ >= answers_.size()) return Status::unavailable("the executor is down");
    *out = answers_[next_++];
    return {};
  }
  std::vector<std::string> asked;
  std::vector<std::uint32_t> limits;

 private:
  std::vector<std::string> answers_;
  std::size_t next_ = 0;
};

constexpr std::int64_t kJune21 = 1687305600000;  // 2023-06-21T00:00Z, a Wednesday

}  // namespace

BOOST_AUTO_TEST_CASE(window_answers_read_only_real_dates) {
  using memos::kernel::routing::parse_window_answer;
  using memos::kernel::routing::TimeWindow;
  using memos::kernel::routing::WindowAnswer;
  TimeWindow w;
  BOOST_TEST((parse_window_answer("FROM 2023-05-01 TO 2023-05-31", &w) == WindowAnswer::window));
  BOOST_TEST(w.from_ms == 1682899200000);                    // 2023-05-01
  BOOST_TEST(w.to_ms == 1682899200000 + 31 * 86'400'000LL);  // through the 31st
  BOOST_TEST((parse_window_answer("Sure! from 2023-5-8 to 2023-5-8.", &w) == WindowAnswer::window));
  BOOST_TEST(w.to_ms - w.from_ms == 86'400'000);
  BOOST_TEST((parse_window_answer("NONE", &w) == WindowAnswer::none));
  BOOST_TEST((parse_window_answer("  none.", &w) == WindowAnswer::none));
  for (const char* bad : {"", "FROM 2023-02-30 TO 2023-03-01", "FROM 2023-06-01 TO 2023-05-01",
                          "FROM 1066-10-14 TO 1066-10-14", "FROM 2023-13-01 TO 2023-13-02",
                          "last May", "nonetheless", "FROM 99999999999-01-01 TO 2023-01-01"}) {
    BOOST_TEST((parse_window_answer(bad, &w) == WindowAnswer::unreadable), bad);
  }
  BOOST_TEST((parse_window_answer(std::string(100000, 'F'), &w) == WindowAnswer::unreadable));
}

BOOST_AUTO_TEST_CASE(yes_no_answers_read_the_first_word) {
  using memos::kernel::routing::parse_yes_no;
  BOOST_TEST(parse_yes_no("Yes.").value());
  BOOST_TEST(parse_yes_no(" - yes, it does").value());
  BOOST_TEST(!parse_yes_no("No").value());
  BOOST_TEST(!parse_yes_no("yesterday").has_value());
  BOOST_TEST(!parse_yes_no("").has_value());
  BOOST_TEST(!parse_yes_no("maybe").has_value());
}

BOOST_AUTO_TEST_CASE(the_model_tiers_fall_back_when_the_model_does_not_read) {
  using memos::kernel::routing::model_compress;
  using memos::kernel::routing::model_select;
  using memos::kernel::routing::model_time_window;
  using memos::kernel::routing::TimeWindow;
  using memos::kernel::routing::WindowAnswer;
  std::string why;
  TimeWindow w;
  ScriptedModel dated({"FROM 2023-05-01 TO 2023-05-31"});
  BOOST_TEST((model_time_window(dated, "What did Mel do last month?", kJune21, &w, &why) ==
              WindowAnswer::window));
  BOOST_TEST(dated.asked[0].find("2023-06-21 (Wednesday)") != std::string::npos, dated.asked[0]);
  ScriptedModel babble(
      {"\x01zz\xc3\xa9\xc3\xa9\xc3\xa9 a long answer that says nothing at all, at all"});
  BOOST_TEST((model_time_window(babble, "q", kJune21, &w, &why) == WindowAnswer::unreadable));
  BOOST_TEST(why.find("the model answered '") == 0, why);
  BOOST_TEST(why.find('\x01') == std::string::npos);
  ScriptedModel down({});
  BOOST_TEST((model_time_window(down, "q", kJune21, &w, &why) == WindowAnswer::unreadable));
  BOOST_TEST(why.find("down") != std::string::npos, why);

  // Expand: one answer a turn; any answer that does not read keeps Mid.
  ScriptedModel picky({"yes", "no", "Yes."});
  auto keep = model_select(picky, "q", {"a", "b", "c"}, &why);
  BOOST_REQUIRE(keep.has_value());
  BOOST_TEST((*keep == std::vector<bool>{true, false, true}));
  ScriptedModel vague({"yes", "perhaps"});
  BOOST_TEST(!model_select(vague, "q", {"a", "b"}, &why).has_value());
  BOOST_TEST(!model_select(down, "q", {"a"}, &why).has_value());

  // Compress: shorter rewrites replace, the rest keep their text, and the
  // whole ends within the budget.
  std::vector<ContextPiece> pieces = {
      piece(1, "Caroline: I went to an LGBTQ support group yesterday. It was powerful."),
      piece(2, "Melanie: I painted a lake sunrise last week. Painting relaxes me a lot."),
      piece(3, "Caroline: I am researching adoption agencies now, the ones for all families.")};
  ScriptedModel terse({"Caroline went to an LGBTQ support group.",
                       "a much much much much much much much much much much much longer text "
                       "than the memory itself ever was, which is no compression at all",
                       "   "});
  const std::size_t rewritten = model_compress(terse, "support group", 30, &pieces, &why);
  BOOST_TEST(rewritten == 1u);
  BOOST_TEST(total_tokens(pieces) <= 30u);
  BOOST_TEST(pieces.front().id == 1u);
  BOOST_TEST(pieces.front().text == "Caroline went to an LGBTQ support group.");
  for (std::uint32_t limit : terse.limits) BOOST_TEST(limit >= 4u);
  // A context within the budget is not sent to the model at all.
  ScriptedModel unused({});
  std::vector<ContextPiece> small = {piece(1, "tiny")};
  BOOST_TEST(model_compress(unused, "q", 100, &small, &why) == 0u);
  BOOST_TEST(unused.asked.empty());
}
