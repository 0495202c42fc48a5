// Randomized test of the Pool: random event sequences driven by a model of the owner that carries out every
// decision, checking after each step the limits, exclusive assignment, FIFO service and the announced deadlines.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <variant>
#include <vector>

#include "pool/pool.h"
#include "pool/policy.h"
#include "tests/unit/pool/pool_test_support.h"

namespace pooler::pool::testing {
namespace {

// The owner's view: what it was asked to do, and what each client holds.
class Owner {
 public:
  Owner(std::uint64_t seed, int clients) : rng_(seed), clients_(static_cast<std::size_t>(clients)) {
    options_ = random_options();
    pool_.emplace("prop/prop", options_);
  }

  // One random event, carried out and checked.
  void step() {
    if (chance(30)) clock_.advance(std::chrono::milliseconds(pick(0, 2000)));
    const TimePoint now = clock_.now;
    const std::size_t total_before = live_count();
    switch (pick(0, 12)) {
      case 0:
      case 1:
      case 2: return do_checkout(now, total_before);
      case 3:
      case 4: return do_checkin(now, total_before, /*broken=*/chance(15));
      case 5:
      case 6: return do_open_outcome(now, total_before);
      case 7: return do_ping_outcome(now, total_before);
      case 8: return do_reset_outcome(now, total_before);
      case 9: return do_cancel(now, total_before);
      case 10: {
        clock_.advance(std::chrono::milliseconds(pick(0, 6000)));
        ticked_ = true;
        return run(total_before, [&](Actions& a) { pool_->tick(clock_.now, a); });
      }
      case 11:
        if (chance(20)) {
          mark_all_stale();
          return run(total_before, [&](Actions& a) { pool_->invalidate(now, a); });
        }
        return;
      case 12:
        if (chance(15)) {
          options_ = random_options();
          return run(total_before, [&](Actions& a) { pool_->reconfigure(options_, now, a); });
        }
        return;
    }
  }

  // Completes everything under way, returns every connection and lets every deadline pass: afterwards no
  // client may still wait (nobody starves forever).
  void drain() {
    for (int round = 0; round < 100; ++round) {
      const std::size_t before = live_count();
      if (auto c = any_conn(ConnState::kOpening)) {
        run(before, [&](Actions& a) { pool_->opened(*c, clock_.now, a); }, *c);
      } else if (auto p = any_conn(ConnState::kPinging)) {
        begin_ping_outcome(*p, true);
        run(before, [&](Actions& a) { pool_->ping_ok(*p, clock_.now, a); }, *p);
        end_ping_outcome();
      } else if (auto r = any_conn(ConnState::kResetting)) {
        run(before, [&](Actions& a) { pool_->reset_done(*r, true, clock_.now, a); }, *r);
      } else if (auto h = any_conn(ConnState::kAssigned)) {
        clients_[holder_of(*h)] = Client{};
        run(before, [&](Actions& a) { pool_->checkin(*h, clock_.now, a); }, *h);
      } else {
        clock_.advance(std::chrono::hours(1));
        ticked_ = true;
        run(before, [&](Actions& a) { pool_->tick(clock_.now, a); });
        if (count_clients(ClientState::kWaiting) == 0 && !any_conn(ConnState::kOpening)) break;
      }
    }
    EXPECT_EQ(count_clients(ClientState::kWaiting), 0u);
    EXPECT_EQ(pool_->stats().waiting, 0);
  }

  const Pool& pool() const { return *pool_; }
  bool broken() const { return ::testing::Test::HasFailure(); }

 private:
  enum class ConnState { kOpening, kPooled, kPinging, kResetting, kAssigned };
  enum class ClientState { kIdle, kWaiting, kPinging, kPingDone, kHolding };
  struct Client {
    ClientState state = ClientState::kIdle;
    std::uint64_t seq = 0;  // arrival order of the current wait
    TimePoint deadline{};
    ConnId conn = 0;        // kPinging, kPingDone, kHolding
  };

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(int percent) { return pick(1, 100) <= percent; }

  Options random_options() {
    using namespace std::chrono_literals;
    Options o;
    o.pool_size = pick(0, 4);
    const int overflows[] = {-1, 0, 1, 2, 3};
    o.max_overflow = overflows[pick(0, 4)];
    o.pool_timeout = std::chrono::milliseconds(pick(0, 10000));
    if (chance(40)) o.pool_recycle = std::chrono::milliseconds(pick(1000, 60000));
    o.pre_ping = chance(50);
    o.pre_ping_after = std::chrono::milliseconds(pick(0, 3000));
    o.use_lifo = chance(50);
    o.reset_on_return = static_cast<ResetOnReturn>(pick(0, 2));
    o.min_pool_size = pick(0, o.pool_size);
    if (chance(40)) o.idle_timeout = std::chrono::milliseconds(pick(1000, 30000));
    EXPECT_TRUE(validate(o).has_value());
    return o;
  }

  std::size_t live_count() const { return conns_.size(); }
  std::size_t count_conns(ConnState s) const {
    return static_cast<std::size_t>(std::count_if(conns_.begin(), conns_.end(), [s](auto& kv) { return kv.second == s; }));
  }
  std::size_t count_clients(ClientState s) const {
    return static_cast<std::size_t>(std::count_if(clients_.begin(), clients_.end(), [s](auto& c) { return c.state == s; }));
  }
  std::optional<ConnId> any_conn(ConnState s) {
    std::vector<ConnId> found;
    for (auto& [id, st] : conns_) {
      if (st == s) found.push_back(id);
    }
    if (found.empty()) return std::nullopt;
    return found[static_cast<std::size_t>(pick(0, static_cast<int>(found.size()) - 1))];
  }
  std::optional<std::size_t> any_client(std::initializer_list<ClientState> states) {
    std::vector<std::size_t> found;
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      if (std::find(states.begin(), states.end(), clients_[i].state) != states.end()) found.push_back(i);
    }
    if (found.empty()) return std::nullopt;
    return found[static_cast<std::size_t>(pick(0, static_cast<int>(found.size()) - 1))];
  }
  std::size_t holder_of(ConnId c) const {
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      if (clients_[i].state == ClientState::kHolding && clients_[i].conn == c) return i;
    }
    ADD_FAILURE() << "conn " << c << " has no holder";
    return 0;
  }
  bool is_oldest_waiting(std::size_t w) const {
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      if (clients_[i].state == ClientState::kWaiting && clients_[i].seq < clients_[w].seq) return false;
    }
    return true;
  }
  // Waiter ids are client indexes + 1: ids are reused by the same client across checkouts, as in the daemon.
  static WaiterId id_of(std::size_t client) { return client + 1; }
  static std::size_t client_of(WaiterId id) { return id - 1; }

  void do_checkout(TimePoint now, std::size_t before) {
    auto w = any_client({ClientState::kIdle});
    if (!w) return;
    clients_[*w] = Client{ClientState::kWaiting, next_seq_++, now + options_.pool_timeout, 0};
    run(before, [&](Actions& a) { pool_->checkout(id_of(*w), now, a); });
  }

  void do_checkin(TimePoint now, std::size_t before, bool broken) {
    auto w = any_client({ClientState::kHolding});
    if (!w) return;
    EXPECT_FALSE(pool_->cancel_waiter(id_of(*w))) << "a holding client is not waiting";
    const ConnId c = clients_[*w].conn;
    clients_[*w] = Client{};
    conns_[c] = ConnState::kPooled;
    run(before, [&](Actions& a) {
      if (broken) {
        pool_->discard(c, now, a);
      } else {
        pool_->checkin(c, now, a);
      }
    });
  }

  void do_open_outcome(TimePoint now, std::size_t before) {
    auto c = any_conn(ConnState::kOpening);
    if (!c) return;
    if (chance(75)) {
      run(before, [&](Actions& a) { pool_->opened(*c, now, a); }, *c);
    } else {
      conns_.erase(*c);
      run(before, [&](Actions& a) { pool_->open_failed(*c, now, "refused", a); });
    }
  }

  void begin_ping_outcome(ConnId c, bool ok) {
    conns_[c] = ConnState::kPooled;
    ping_client_.reset();
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      if (clients_[i].state == ClientState::kPinging && clients_[i].conn == c) {
        // A failed ping puts the client back in line at its old place; a good one hands it this conn.
        clients_[i].state = ok ? ClientState::kPingDone : ClientState::kWaiting;
        ping_client_ = i;
      }
    }
  }
  void end_ping_outcome() {
    // A good ping on a connection invalidated meanwhile: the conn was closed and the client waits again.
    if (ping_client_ && clients_[*ping_client_].state == ClientState::kPingDone) {
      clients_[*ping_client_].state = ClientState::kWaiting;
    }
    ping_client_.reset();
  }

  void do_ping_outcome(TimePoint now, std::size_t before) {
    auto c = any_conn(ConnState::kPinging);
    if (!c) return;
    const bool ok = chance(80);
    if (!ok) mark_all_stale();
    begin_ping_outcome(*c, ok);
    run(before, [&](Actions& a) {
      if (ok) {
        pool_->ping_ok(*c, now, a);
      } else {
        pool_->ping_failed(*c, now, a);
      }
    }, *c);
    end_ping_outcome();
  }

  // An invalidation makes every connection already open stale; those still opening count as new.
  void mark_all_stale() {
    for (auto& [id, st] : conns_) {
      if (st != ConnState::kOpening) stale_.insert(id);
    }
  }

  void do_reset_outcome(TimePoint now, std::size_t before) {
    auto c = any_conn(ConnState::kResetting);
    if (!c) return;
    const bool ok = chance(85);
    run(before, [&](Actions& a) { pool_->reset_done(*c, ok, now, a); }, *c);
  }

  void do_cancel(TimePoint now, std::size_t before) {
    auto w = any_client({ClientState::kWaiting, ClientState::kPinging});
    if (!w) return;
    EXPECT_TRUE(pool_->cancel_waiter(id_of(*w)));
    clients_[*w] = Client{};
    run(before, [](Actions&) {});
    (void)now;
  }

  // Runs one pool event and carries out its decisions, checking each. `returning` is a connection the
  // event hands back to the pool (its state becomes kPooled before the decisions are applied).
  template <class F>
  void run(std::size_t before, F&& event, std::optional<ConnId> returning = std::nullopt) {
    if (returning) conns_[*returning] = ConnState::kPooled;
    Actions actions;
    event(actions);
    bool opened_any = false;
    for (const Action& action : actions) {
      SCOPED_TRACE(to_string(action));
      if (auto* open = std::get_if<OpenConn>(&action)) {
        EXPECT_FALSE(conns_.contains(open->conn) || closed_.contains(open->conn)) << "conn id reused";
        conns_[open->conn] = ConnState::kOpening;
        opened_any = true;
      } else if (auto* close = std::get_if<CloseConn>(&action)) {
        auto it = conns_.find(close->conn);
        ASSERT_TRUE(it != conns_.end()) << "closing an unknown or closed conn";
        EXPECT_EQ(it->second, ConnState::kPooled) << "closing a conn that is not the pool's to close";
        conns_.erase(it);
        closed_.insert(close->conn);
        if (ping_client_ && clients_[*ping_client_].state == ClientState::kPingDone &&
            clients_[*ping_client_].conn == close->conn) {
          clients_[*ping_client_].state = ClientState::kWaiting;
        }
      } else if (auto* ping = std::get_if<PingConn>(&action)) {
        EXPECT_EQ(conns_[ping->conn], ConnState::kPooled);
        EXPECT_FALSE(stale_.contains(ping->conn)) << "pinging a connection from before an invalidation";
        const std::size_t w = client_of(ping->waiter);
        ASSERT_LT(w, clients_.size());
        EXPECT_EQ(clients_[w].state, ClientState::kWaiting);
        EXPECT_TRUE(is_oldest_waiting(w)) << "a younger client was served first";
        conns_[ping->conn] = ConnState::kPinging;
        clients_[w].state = ClientState::kPinging;
        clients_[w].conn = ping->conn;
      } else if (auto* reset = std::get_if<ResetConn>(&action)) {
        EXPECT_EQ(conns_[reset->conn], ConnState::kPooled);
        conns_[reset->conn] = ConnState::kResetting;
      } else if (auto* assign = std::get_if<AssignConn>(&action)) {
        ASSERT_TRUE(conns_.contains(assign->conn)) << "assigning a closed or unknown conn";
        EXPECT_EQ(conns_[assign->conn], ConnState::kPooled) << "assigning a conn that is assigned or busy";
        EXPECT_FALSE(stale_.contains(assign->conn)) << "handing out a connection from before an invalidation";
        const std::size_t w = client_of(assign->waiter);
        ASSERT_LT(w, clients_.size());
        Client& client = clients_[w];
        if (client.state == ClientState::kPingDone) {
          EXPECT_EQ(client.conn, assign->conn) << "pinged one conn, assigned another";
        } else {
          EXPECT_EQ(client.state, ClientState::kWaiting) << "assigning to a client that is not waiting";
          EXPECT_TRUE(is_oldest_waiting(w)) << "a younger client was served first";
        }
        client.state = ClientState::kHolding;
        client.conn = assign->conn;
        conns_[assign->conn] = ConnState::kAssigned;
      } else if (auto* fail = std::get_if<FailWaiter>(&action)) {
        const std::size_t w = client_of(fail->waiter);
        ASSERT_LT(w, clients_.size());
        EXPECT_EQ(clients_[w].state, ClientState::kWaiting);
        if (fail->reason == FailReason::kTimeout) {
          EXPECT_LE(clients_[w].deadline, clock_.now) << "timed out early";
          EXPECT_EQ(fail->message, timeout_message("prop/prop", options_));
        } else {
          EXPECT_TRUE(is_oldest_waiting(w)) << "connect failure not given to the oldest waiter";
        }
        clients_[w] = Client{};
      }
    }
    last_ = describe(actions);
    check(before, opened_any);
  }

  void check(std::size_t before, bool opened_any) {
    auto ok = pool_->check_invariants();
    EXPECT_TRUE(ok.has_value()) << (ok ? "" : ok.error());
    const Pool::Stats s = pool_->stats();
    const std::size_t total = live_count();
    EXPECT_EQ(static_cast<std::size_t>(s.total), total);
    EXPECT_EQ(static_cast<std::size_t>(s.opening), count_conns(ConnState::kOpening));
    EXPECT_EQ(static_cast<std::size_t>(s.idle), count_conns(ConnState::kPooled));
    EXPECT_EQ(static_cast<std::size_t>(s.pinging), count_conns(ConnState::kPinging));
    EXPECT_EQ(static_cast<std::size_t>(s.resetting), count_conns(ConnState::kResetting));
    EXPECT_EQ(static_cast<std::size_t>(s.active), count_conns(ConnState::kAssigned));
    EXPECT_EQ(static_cast<std::size_t>(s.waiting), count_clients(ClientState::kWaiting));
    // The limit: opens only within it; after a shrink the count may stay above it but never grows.
    EXPECT_TRUE(!opened_any || !over_limit(total, options_)) << "opened beyond pool_size + max_overflow";
    EXPECT_TRUE(!over_limit(total, options_) || total <= before) << "grew while over the limit";
    if (ticked_) {
      for (const Client& c : clients_) {
        EXPECT_FALSE(c.state == ClientState::kWaiting && c.deadline <= clock_.now) << "deadline passed unfailed";
      }
      ticked_ = false;
      auto next = pool_->next_deadline();
      EXPECT_TRUE(!next || *next > clock_.now) << "tick left work due now: the owner would spin; due in "
          << (next ? (*next - clock_.now).count() : 0) << " total " << s.total << " idle " << s.idle
          << " waiting " << s.waiting << " min " << options_.min_pool_size << " size " << options_.pool_size << " ov " << options_.max_overflow << "\n" << last_;
    }
  }

  std::mt19937_64 rng_;
  FakeClock clock_;
  Options options_;
  std::optional<Pool> pool_;
  std::map<ConnId, ConnState> conns_;  // live connections only
  std::set<ConnId> closed_;
  std::set<ConnId> stale_;  // opened before an invalidation: must never be handed out again
  std::vector<Client> clients_;
  std::optional<std::size_t> ping_client_;  // the client whose ping outcome is being delivered
  std::uint64_t next_seq_ = 0;
  bool ticked_ = false;
  std::string last_;
};

// 60 seeds x 400 random events (24,000 steps), plus a drain per seed: limits, exclusivity, FIFO, deadlines.
TEST(PoolProperty, RandomEventSequencesKeepEveryRule) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    Owner owner(seed, /*clients=*/12);
    for (int i = 0; i < 400 && !owner.broken(); ++i) owner.step();
    if (!owner.broken()) owner.drain();
    if (owner.broken()) break;  // one seed's story is enough to debug
  }
}

// Many clients on a tiny pool for longer runs: the wait queue is exercised hard.
TEST(PoolProperty, CrowdedSmallPool) {
  for (std::uint64_t seed = 100; seed <= 110; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    Owner owner(seed, /*clients=*/40);
    for (int i = 0; i < 2000 && !owner.broken(); ++i) owner.step();
    if (!owner.broken()) owner.drain();
    if (owner.broken()) break;
  }
}

}  // namespace
}  // namespace pooler::pool::testing
