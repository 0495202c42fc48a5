// Unit tests of the prepared-statement bookkeeping (daemon/prepared.h): registry, per-connection LRU, the
// queue of owed answers with hidden and made-up ones, and the recognition of DEALLOCATE/DISCARD/LISTEN.
#include "daemon/prepared.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pooler::daemon {
namespace {

using Kind = OwedAnswers::Kind;

std::string tail(std::string_view sql) {
  std::string t(sql);
  t += '\0';
  t.append("\0\0", 2);  // no parameter types
  return t;
}

// ---- StatementRegistry ----

TEST(DaemonStatementRegistry, IdenticalStatementsShareOneServerName) {
  StatementRegistry reg;
  StatementRef a = reg.intern(tail("SELECT 1"));
  StatementRef b = reg.intern(tail("SELECT 1"));
  StatementRef c = reg.intern(tail("SELECT 2"));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a->server_name, c->server_name);
  EXPECT_EQ(a->parse_tail, tail("SELECT 1"));
  EXPECT_EQ(reg.live(), 2u);
}

TEST(DaemonStatementRegistry, ParameterTypesArePartOfTheIdentity) {
  StatementRegistry reg;
  std::string untyped = tail("SELECT $1");
  std::string typed = std::string("SELECT $1") + '\0' + std::string("\0\1\0\0\0\x17", 6);  // one int4 parameter
  EXPECT_NE(reg.intern(untyped)->server_name, reg.intern(typed)->server_name);
}

TEST(DaemonStatementRegistry, StatementNobodyHoldsGetsAFreshNameAndIsSwept) {
  StatementRegistry reg;
  std::string first_name = reg.intern(tail("SELECT 1"))->server_name;  // released at once
  StatementRef again = reg.intern(tail("SELECT 1"));
  EXPECT_NE(again->server_name, first_name);
  for (int i = 0; i < 1000; ++i) (void)reg.intern(tail("SELECT " + std::to_string(i + 10)));
  EXPECT_EQ(reg.live(), 1u);
  EXPECT_EQ(reg.intern(tail("SELECT 1")).get(), again.get());
}

// ---- ServerStatements ----

TEST(DaemonServerStatements, EvictsTheLeastRecentlyUsed) {
  StatementRegistry reg;
  auto a = reg.intern(tail("a")), b = reg.intern(tail("b")), c = reg.intern(tail("c"));
  ServerStatements cache(2);
  EXPECT_EQ(cache.add(a), nullptr);
  EXPECT_EQ(cache.add(b), nullptr);
  cache.touch(a.get());  // b is now the least recently used
  StatementRef victim = cache.add(c);
  EXPECT_EQ(victim.get(), b.get());
  EXPECT_TRUE(cache.contains(a.get()));
  EXPECT_TRUE(cache.contains(c.get()));
  EXPECT_FALSE(cache.contains(b.get()));
  EXPECT_EQ(cache.size(), 2u);
}

TEST(DaemonServerStatements, CapacityZeroStillHoldsTheStatementInUse) {
  StatementRegistry reg;
  auto a = reg.intern(tail("a")), b = reg.intern(tail("b"));
  ServerStatements cache(0);
  EXPECT_EQ(cache.add(a), nullptr);
  EXPECT_EQ(cache.add(b).get(), a.get());
  EXPECT_EQ(cache.size(), 1u);
}

TEST(DaemonServerStatements, RestoreAndTakeAll) {
  StatementRegistry reg;
  auto a = reg.intern(tail("a")), b = reg.intern(tail("b"));
  ServerStatements cache(2);
  (void)cache.add(a);
  (void)cache.add(b);
  auto all = cache.take_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].get(), b.get());  // most recent first
  EXPECT_EQ(cache.size(), 0u);
  for (auto& s : all) cache.restore(s);
  EXPECT_TRUE(cache.contains(a.get()));
  EXPECT_TRUE(cache.contains(b.get()));
  // Restored in the same order: a is still the least recently used.
  auto c = reg.intern(tail("c"));
  EXPECT_EQ(cache.add(c).get(), a.get());
  cache.restore(b);  // already there: no duplicate
  EXPECT_EQ(cache.size(), 2u);
}

// ---- OwedAnswers ----

struct Owed : ::testing::Test {
  StatementRegistry reg;
  ServerStatements cache{4};
  OwedAnswers owed;

  std::string take(char status = 'I') {
    std::string out;
    owed.take_made_up(out, status);
    return out;
  }
};

TEST_F(Owed, MadeUpAnswerWithNothingOwedBeforeItIsDueAtOnce) {
  owed.push_made_up(std::string("1\0\0\0\4", 5), false, cache);
  EXPECT_TRUE(owed.made_up_due());
  EXPECT_EQ(take(), std::string("1\0\0\0\4", 5));
  EXPECT_TRUE(owed.empty());
}

TEST_F(Owed, MadeUpAnswerWaitsForTheAnswersOwedBeforeIt) {
  owed.push(Kind::kBind, cache);
  owed.push(Kind::kExecute, cache);
  owed.push(Kind::kSync, cache);
  owed.push_made_up("x", false, cache);  // e.g. CloseComplete for a Close after the Sync
  EXPECT_FALSE(owed.made_up_due());
  EXPECT_FALSE(owed.on_message('2', cache));
  EXPECT_FALSE(owed.on_message('D', cache));  // rows do not end an Execute
  EXPECT_FALSE(owed.on_message('C', cache));
  EXPECT_TRUE(owed.on_message('Z', cache));
  EXPECT_EQ(take(), "x");
  EXPECT_TRUE(owed.empty());
}

TEST_F(Owed, HiddenParseCompleteIsHiddenOnlyWhenAtTheHead) {
  auto st = reg.intern(tail("SELECT 1"));
  (void)cache.add(st);
  owed.push(Kind::kBind, cache);
  owed.push(Kind::kSync, cache);
  owed.push(Kind::kHiddenParse, cache, st);
  owed.push(Kind::kBind, cache);
  EXPECT_FALSE(owed.hides('1'));
  owed.on_message('2', cache);
  owed.on_message('Z', cache);
  EXPECT_TRUE(owed.hides('1'));
  EXPECT_FALSE(owed.hides('2'));
  owed.on_message('1', cache);
  EXPECT_FALSE(owed.hides('1'));
  owed.on_message('2', cache);
  EXPECT_TRUE(owed.empty());
  EXPECT_TRUE(cache.contains(st.get()));
}

TEST_F(Owed, HiddenCloseCompleteIsHidden) {
  auto st = reg.intern(tail("SELECT 1"));
  owed.push(Kind::kHiddenClose, cache, st);
  EXPECT_TRUE(owed.hides('3'));
  EXPECT_FALSE(owed.hides('1'));
}

TEST_F(Owed, ErrorSkipsToTheSyncAndUndoesWhatTheSkippedMessagesDid) {
  auto failing = reg.intern(tail("SELEC 1"));
  auto evicted = reg.intern(tail("SELECT 2"));
  const std::uint64_t parse = cache.next_parse();
  (void)cache.add(failing, parse, owed.group());
  OwedAnswers::Entry p = OwedAnswers::Entry::of(Kind::kParse, failing, parse);
  p.client_name = "s1";
  owed.push(std::move(p), cache);
  owed.push(Kind::kHiddenClose, cache, evicted);  // the server skips it: evicted may still be there
  owed.push_made_up("1", false, cache);             // skipped too: never sent
  owed.push(Kind::kBind, cache);
  owed.push(Kind::kSync, cache);
  owed.push_made_up("after", false, cache);
  EXPECT_FALSE(owed.on_message('E', cache));
  // Neither is known to exist on the server now: both are closed and prepared again before use.
  EXPECT_EQ(cache.state(failing.get(), owed.group()), ServerStatements::State::kStale);
  EXPECT_EQ(cache.state(evicted.get(), owed.group()), ServerStatements::State::kStale);
  auto failed = owed.take_failed_names();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].first, "s1");
  EXPECT_EQ(failed[0].second.get(), failing.get());
  EXPECT_EQ(owed.size(), 2u);  // the Sync and what follows it
  EXPECT_TRUE(owed.on_message('Z', cache));
  EXPECT_EQ(take(), "after");
}

TEST_F(Owed, ErrorBeforeTheSyncWasSentSkipsWhatArrivesUntilTheSync) {
  auto st = reg.intern(tail("SELECT 1"));
  owed.push(Kind::kExecute, cache);
  owed.on_message('E', cache);
  EXPECT_FALSE(owed.empty());  // still skipping
  const std::uint64_t parse = cache.next_parse();
  (void)cache.add(st, parse, owed.group());
  owed.push(Kind::kHiddenParse, cache, st, parse);  // sent while the server skips: undone at once
  EXPECT_EQ(cache.state(st.get(), owed.group()), ServerStatements::State::kStale);
  owed.push_made_up("dropped", true, cache);
  EXPECT_EQ(owed.size(), 0u);
  owed.push(Kind::kSync, cache);
  EXPECT_EQ(owed.size(), 1u);
  owed.on_message('Z', cache);
  EXPECT_TRUE(owed.empty());
  EXPECT_EQ(take(), "");
}

TEST_F(Owed, ParseCompleteConfirmsAndAStatementPendingFromAnEarlierSyncGroupIsStale) {
  auto st = reg.intern(tail("SELECT 1"));
  const std::uint64_t parse = cache.next_parse();
  (void)cache.add(st, parse, owed.group());
  owed.push(Kind::kParse, cache, st, parse);
  // Same Sync group: if the Parse fails, the server skips what relies on it too.
  EXPECT_EQ(cache.state(st.get(), owed.group()), ServerStatements::State::kReady);
  owed.push(Kind::kSync, cache);
  // The next group would run even if the Parse failed.
  EXPECT_EQ(cache.state(st.get(), owed.group()), ServerStatements::State::kStale);
  owed.on_message('1', cache);
  EXPECT_EQ(cache.state(st.get(), owed.group()), ServerStatements::State::kReady);
  // A later Parse of it (after a Close) being undone does not matter to an earlier one's answer, and the
  // other way round.
  const std::uint64_t again = cache.next_parse();
  cache.reparse(st.get(), again, owed.group());
  cache.confirm(st.get(), parse);  // a stale answer: still pending
  EXPECT_EQ(cache.state(st.get(), owed.group() + 1), ServerStatements::State::kStale);
  cache.parse_undone(st.get(), parse);  // not the pending one: no effect
  cache.confirm(st.get(), again);
  EXPECT_EQ(cache.state(st.get(), owed.group() + 1), ServerStatements::State::kReady);
}

TEST_F(Owed, SkippedMadeUpParseCompleteFreesTheClientName) {
  auto st = reg.intern(tail("SELECT 1"));
  owed.push(Kind::kBind, cache);
  OwedAnswers::Entry e = OwedAnswers::Entry::of(Kind::kMadeUp, st);
  e.bytes = "1";
  e.client_name = "mine";
  owed.push(std::move(e), cache);
  owed.push(Kind::kSync, cache);
  owed.on_message('E', cache);
  auto failed = owed.take_failed_names();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].first, "mine");
  EXPECT_TRUE(owed.take_failed_names().empty());
}

TEST_F(Owed, ErrorInsideASimpleQuerySkipsNothing) {
  owed.push(Kind::kQuery, cache);
  owed.push_made_up("next", true, cache);
  EXPECT_FALSE(owed.on_message('T', cache));
  EXPECT_FALSE(owed.on_message('C', cache));
  EXPECT_FALSE(owed.on_message('E', cache));
  EXPECT_TRUE(owed.on_message('Z', cache));
  std::string out = take('E');
  EXPECT_EQ(out, std::string("nextZ\0\0\0\5E", 10));
}

TEST_F(Owed, FailedDiscardPutsTheStatementsBackAndASuccessfulOneDoesNot) {
  auto st = reg.intern(tail("SELECT 1"));
  (void)cache.add(st);
  OwedAnswers::Entry failed = OwedAnswers::Entry::of(Kind::kQuery);
  failed.dropped = cache.take_all();
  owed.push(std::move(failed), cache);
  owed.on_message('E', cache);
  owed.on_message('Z', cache);
  EXPECT_TRUE(cache.contains(st.get()));
  EXPECT_EQ(cache.state(st.get(), owed.group()), ServerStatements::State::kStale);

  OwedAnswers::Entry ok = OwedAnswers::Entry::of(Kind::kQuery);
  ok.dropped = cache.take_all();
  owed.push(std::move(ok), cache);
  owed.on_message('C', cache);
  owed.on_message('Z', cache);
  EXPECT_FALSE(cache.contains(st.get()));
}

TEST_F(Owed, DescribeEndsAtRowDescriptionOrNoData) {
  owed.push(Kind::kDescribe, cache);
  owed.push(Kind::kDescribe, cache);
  owed.push_made_up("m", false, cache);
  EXPECT_FALSE(owed.on_message('t', cache));  // ParameterDescription comes first for a statement
  EXPECT_FALSE(owed.on_message('T', cache));
  EXPECT_TRUE(owed.on_message('n', cache));
}

TEST_F(Owed, ExecuteEndsAtEmptyQueryOrPortalSuspended) {
  owed.push(Kind::kExecute, cache);
  owed.push(Kind::kExecute, cache);
  owed.push(Kind::kExecute, cache);
  owed.push(Kind::kSync, cache);
  owed.on_message('I', cache);
  owed.on_message('s', cache);
  owed.on_message('G', cache);  // COPY FROM STDIN inside an Execute
  EXPECT_EQ(owed.size(), 2u);
  owed.on_message('C', cache);
  owed.on_message('Z', cache);
  EXPECT_TRUE(owed.empty());
}

TEST_F(Owed, MessagesWithNothingOwedAreIgnored) {
  EXPECT_FALSE(owed.on_message('Z', cache));
  EXPECT_FALSE(owed.on_message('E', cache));
  EXPECT_TRUE(owed.empty());
  EXPECT_FALSE(owed.hides('1'));
}

// ---- classify_query ----

TEST(DaemonClassifyQuery, RecognisesTheStatementsAlone) {
  using K = QueryCommand::Kind;
  EXPECT_EQ(classify_query("LISTEN foo").kind, K::kListen);
  EXPECT_EQ(classify_query("  /* c */ listen \"Foo\";").kind, K::kListen);
  EXPECT_EQ(classify_query(std::string_view("DISCARD ALL\0", 12)).kind, K::kDiscardAll);
  EXPECT_EQ(classify_query("discard all ; -- bye").kind, K::kDiscardAll);
  EXPECT_EQ(classify_query("DEALLOCATE ALL").kind, K::kDeallocateAll);
  EXPECT_EQ(classify_query("deallocate prepare all;").kind, K::kDeallocateAll);

  QueryCommand d = classify_query("DEALLOCATE _pg3_0");
  EXPECT_EQ(d.kind, K::kDeallocate);
  EXPECT_EQ(d.name, "_pg3_0");
  EXPECT_EQ(classify_query("DEALLOCATE PREPARE Stmt1").name, "stmt1");  // folded like SQL does
  EXPECT_EQ(classify_query("DEALLOCATE \"Stmt\"\"1\"").name, "Stmt\"1");
  EXPECT_EQ(classify_query("DEALLOCATE \"ALL\"").kind, K::kDeallocate);
  EXPECT_EQ(classify_query("deallocate prepare").name, "prepare");
  EXPECT_EQ(classify_query("DEALLOCATE s1 /* c */ ;").name, "s1");
  EXPECT_EQ(classify_query("SET search_path TO a, b").kind, K::kSetSearchPath);
  EXPECT_EQ(classify_query("set session search_path = 'x'; select 1").kind, K::kSetSearchPath);
  EXPECT_EQ(classify_query("RESET search_path").kind, K::kSetSearchPath);
  EXPECT_EQ(classify_query("reset all").kind, K::kSetSearchPath);
}

TEST(DaemonClassifyQuery, AnythingElseIsOther) {
  using K = QueryCommand::Kind;
  for (std::string_view sql :
       {"SELECT 1", "DISCARD PLANS", "DISCARD ALL; SELECT 1", "DEALLOCATE", "DEALLOCATE a b", "DEALLOCATE a; SELECT 1",
        "UNLISTEN *", "NOTIFY foo", "SET LOCAL search_path = x", "SET work_mem = '1MB'", "RESET work_mem", "", "   ",
        "-- LISTEN x\nSELECT 1", "/* LISTEN /* nested */ x */ SELECT 1",
        // A zero-length quoted identifier is no name (the server refuses it).
        "DEALLOCATE \"\"", "DEALLOCATE PREPARE \"\";"}) {
    EXPECT_EQ(classify_query(sql).kind, K::kOther) << sql;
  }
}

}  // namespace
}  // namespace pooler::daemon
