// The ORM against a real PostgreSQL: create_all, INSERT … RETURNING, identity map, queries and joins, UPDATE
// of changed columns only, flush order with foreign keys, autoflush, expire/refresh/merge, lazy / selectin /
// joined loading (statements counted through the engine's echo hook), failed flushes, bulk update/delete.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "tests/client/client_fixture.h"
#include "tests/unit/client/orm_models.h"

namespace pooler::test {
namespace {

using namespace pooler::orm;
using orm_models::Comment;
using orm_models::Membership;
using orm_models::Post;
using orm_models::User;
using Strings = std::vector<std::string>;

class IntegrationOrm : public ClientClusterTest {
 protected:
  void SetUp() override {
    engine_.emplace(create_engine(url(), {.echo = true, .echo_sink = [this](std::string_view s) { log_.emplace_back(s); }}));
    metadata<User, Post, Comment>().drop_all(*engine_);
    metadata<User, Post, Comment>().create_all(*engine_);
    log_.clear();
  }

  Engine& engine() { return *engine_; }
  // Statements echoed since the last clear that start with `prefix` ("SELECT", "INSERT", …).
  Strings statements(std::string_view prefix) const {
    Strings out;
    for (const auto& s : log_) {
      if (s.starts_with(prefix)) out.push_back(s);
    }
    return out;
  }
  // The table each INSERT/DELETE statement echoed since the last clear wrote to, in order.
  Strings written_tables() const {
    Strings out;
    for (const auto& s : log_) {
      if (!s.starts_with("INSERT INTO ") && !s.starts_with("DELETE FROM ")) continue;
      auto start = s.find('"');
      out.push_back(s.substr(0, s.find(' ')) + " " + s.substr(start + 1, s.find('"', start + 1) - start - 1));
    }
    return out;
  }
  std::string db(const std::string& sql) { return cluster().psql(sql, "app"); }

  // n users ann0…, each with `posts` posts, committed.
  std::vector<std::int64_t> seed(int n, int posts) {
    Session s(engine());
    std::vector<std::shared_ptr<User>> users;
    for (int i = 0; i < n; ++i) {
      // fmt rather than operator+ on strings: GCC 12's -Wrestrict misfires on the latter in Release builds.
      auto u = s.add(User{.name = fmt::format("user{}", i), .email = fmt::format("u{}@example.com", i)});
      for (int p = 0; p < posts; ++p) u->posts.add(Post{.title = fmt::format("p{}.{}", i, p), .score = p});
      users.push_back(u);
    }
    s.commit();
    std::vector<std::int64_t> ids;
    for (const auto& u : users) ids.push_back(u->id);
    log_.clear();
    return ids;
  }

  std::optional<Engine> engine_;
  Strings log_;
};

// add + commit: INSERT … RETURNING fills the key and the server defaults; optional members left empty with a
// server default are not sent.
TEST_F(IntegrationOrm, InsertReturningFillsKeyAndServerDefaults) {
  Session session(engine());
  auto ann = session.add(User{.name = "ann", .email = "ann@example.com"});
  EXPECT_EQ(ann->id, 0);
  session.commit();
  EXPECT_GT(ann->id, 0);
  EXPECT_TRUE(ann->is_active);
  EXPECT_TRUE(ann->created_at.has_value());
  EXPECT_EQ(statements("INSERT"),
            (Strings{R"(INSERT INTO "users" ("name", "email", "is_active", "nickname") VALUES ($1, $2, $3, $4) )"
                     R"(RETURNING "users"."id", "users"."name", "users"."email", "users"."is_active", )"
                     R"("users"."nickname", "users"."created_at")"}));
  EXPECT_EQ(db("SELECT name || ' ' || email || ' ' || is_active FROM users"), "ann ann@example.com true");
  // A plain bool member is always sent, even when it equals the zero value.
  session.add(User{.name = "off", .email = "off@example.com", .is_active = false});
  session.commit();
  EXPECT_EQ(db("SELECT is_active FROM users WHERE name = 'off'"), "f");
}

// get() and queries return one object per primary key per session; get() of a held, unexpired object runs no
// query; a missing key gives null.
TEST_F(IntegrationOrm, IdentityMap) {
  auto ids = seed(2, 0);
  Session session(engine());
  auto a = session.get<User>(ids[0]);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "user0");
  auto b = session.get<User>(ids[0]);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(statements("SELECT").size(), 1u);
  auto c = session.scalars(select<User>().where(col(&User::email) == "u0@example.com")).one();
  EXPECT_EQ(c.get(), a.get());
  auto all = session.scalars(select<User>().order_by(&User::id)).all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].get(), a.get());
  EXPECT_EQ(session.get<User>(ids[1]).get(), all[1].get());
  EXPECT_EQ(session.get<User>(987654), nullptr);
  // Another session has its own objects.
  Session other(engine());
  EXPECT_NE(other.get<User>(ids[0]).get(), a.get());
}

// add_all takes values or pointers; contains/expunge: an expunged object is no longer the session's, and the
// next load of its row makes a new object.
TEST_F(IntegrationOrm, AddAllContainsExpunge) {
  Session session(engine());
  auto kept = std::make_shared<User>(User{.name = "p", .email = "p@example.com"});
  session.add_all(std::vector<std::shared_ptr<User>>{kept});
  session.add_all(std::vector<User>{User{.name = "v1", .email = "v1@example.com"}, User{.name = "v2", .email = "v2@example.com"}});
  EXPECT_TRUE(session.contains(kept));
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(name, ',' ORDER BY id) FROM users"), "p,v1,v2");
  session.expunge(kept);
  EXPECT_FALSE(session.contains(kept));
  auto again = session.get<User>(kept->id);
  ASSERT_NE(again, nullptr);
  EXPECT_NE(again.get(), kept.get());
  EXPECT_TRUE(session.contains(again));
  // A many-to-one can be cleared by assigning nullptr.
  Post post{.title = "t", .author = again};
  post.author = nullptr;
  EXPECT_EQ(post.author.get(), nullptr);
}

// The issue's queries: filters, ordering, limit, or_/like, count, one()/one_or_none() errors, column scalars,
// in_/between/is_/ilike/offset, aggregates.
TEST_F(IntegrationOrm, Queries) {
  Session session(engine());
  session.add(User{.name = "ann", .email = "ann@example.com"});
  session.add(User{.name = "bob", .email = "bob@example.com", .is_active = false});
  session.add(User{.name = "root", .email = "root@example.com"});
  session.add(User{.name = "cy", .email = "cy@admin.org", .nickname = "c"});
  session.commit();

  auto active = session.scalars(select<User>().where(col(&User::is_active) == true).order_by(desc(&User::id)).limit(10)).all();
  Strings names;
  for (const auto& u : active) names.push_back(u->name);
  EXPECT_EQ(names, (Strings{"cy", "root", "ann"}));
  auto admins = session.scalars(select<User>()
                                    .where(or_(col(&User::name) == "root", col(&User::email).like("%@admin%")))
                                    .order_by(&User::id))
                    .all();
  ASSERT_EQ(admins.size(), 2u);
  EXPECT_EQ(admins[1]->name, "cy");
  std::optional<std::int64_t> n = session.scalar(select(func::count(&User::id)).where(col(&User::is_active) == true));
  EXPECT_EQ(n, 3);
  EXPECT_THROW((void)session.scalars(select<User>().where(col(&User::name) == "nobody")).one(), NoResultFound);
  EXPECT_THROW((void)session.scalars(select<User>()).one(), MultipleResultsFound);
  EXPECT_THROW((void)session.execute(select<User>()).scalar_one_or_none(), MultipleResultsFound);
  EXPECT_EQ(session.execute(select<User>().where(col(&User::name) == "nobody")).scalar_one_or_none(), nullptr);
  EXPECT_EQ(session.scalars(select(&User::name).where(col(&User::id).in_({admins[0]->id, admins[1]->id})).order_by(&User::name)).all(),
            (Strings{"cy", "root"}));
  EXPECT_EQ(session.scalars(select(&User::name).where(col(&User::nickname).is_(nullptr), col(&User::name).ilike("A%"))).all(),
            (Strings{"ann"}));
  EXPECT_EQ(session.scalars(select(&User::name).where(not_(col(&User::name).between("b", "c"))).order_by(&User::name).offset(1)).all(),
            (Strings{"cy", "root"}));
  EXPECT_EQ(session.scalar(select(&User::nickname).where(col(&User::name) == "cy")), "c");
  EXPECT_EQ(session.scalar(select(&User::nickname).where(col(&User::name) == "ann")), std::nullopt);
}

// execute(select<User, Post>().join…) yields (user, post) tuples with identity-mapped users; group_by/having
// with aggregates yield typed tuples.
TEST_F(IntegrationOrm, JoinsAndAggregates) {
  auto ids = seed(3, 2);
  Session session(engine());
  auto pairs = session.execute(select<User, Post>().join<Post>(col(&User::id) == col(&Post::author_id)).order_by(&Post::id)).all();
  ASSERT_EQ(pairs.size(), 6u);
  for (const auto& [user, post] : pairs) EXPECT_EQ(post->author_id, user->id);
  EXPECT_EQ(std::get<0>(pairs[0]).get(), std::get<0>(pairs[1]).get());
  EXPECT_EQ(std::get<0>(pairs[0])->id, ids[0]);

  session.add(User{.name = "lonely", .email = "l@example.com"});
  auto counts = session.execute(select(&User::name, func::count(&Post::id), func::sum(&Post::score))
                                    .outerjoin(&User::posts)
                                    .group_by(&User::name)
                                    .having(func::count(&Post::id) < 3)
                                    .order_by(desc(func::count(&Post::id)), &User::name))
                    .all();
  ASSERT_EQ(counts.size(), 4u);
  EXPECT_EQ(counts[0], std::make_tuple(std::string("user0"), std::int64_t{2}, std::optional<std::int32_t>(1)));
  EXPECT_EQ(counts[3], std::make_tuple(std::string("lonely"), std::int64_t{0}, std::optional<std::int32_t>()));
  auto stats = session.execute(select(func::min(&Post::score), func::max(&Post::score), func::avg(&Post::score))).one();
  EXPECT_EQ(stats, std::make_tuple(std::optional<std::int32_t>(0), std::optional<std::int32_t>(1), std::optional<double>(0.5)));
  auto with_count = session.execute(select<User>(func::count(&Post::id)).join(&User::posts).group_by(&User::id).order_by(&User::id)).all();
  ASSERT_EQ(with_count.size(), 3u);
  EXPECT_EQ(std::get<1>(with_count[2]), 2);
}

// flush sends an UPDATE of the changed columns only, none when nothing changed; is_modified agrees.
TEST_F(IntegrationOrm, UpdateOfChangedColumnsOnly) {
  auto ids = seed(1, 0);
  Session session(engine());
  auto u = session.get<User>(ids[0]);
  EXPECT_FALSE(session.is_modified(u));
  u->name = "user0";  // same value
  u->nickname = "nick";
  EXPECT_TRUE(session.is_modified(u));
  log_.clear();
  session.flush();
  EXPECT_EQ(statements("UPDATE"),
            (Strings{R"(UPDATE "users" SET "nickname" = $1 WHERE "users"."id" = $2 RETURNING "users"."id", )"
                     R"("users"."name", "users"."email", "users"."is_active", "users"."nickname", "users"."created_at")"}));
  EXPECT_FALSE(session.is_modified(u));
  log_.clear();
  session.flush();
  EXPECT_TRUE(statements("UPDATE").empty());
  u->is_active = false;
  u->nickname.reset();
  session.commit();
  EXPECT_EQ(db("SELECT is_active || ' ' || coalesce(nickname, 'NULL') FROM users"), "false NULL");
}

// Objects reach the session through relationships (cascade), INSERTs go parents first whatever the add order,
// foreign keys are filled from the parent's new key, client defaults apply; DELETEs go children first.
TEST_F(IntegrationOrm, FlushOrderFollowsForeignKeys) {
  Session session(engine());
  auto ann = std::make_shared<User>(User{.name = "ann", .email = "ann@example.com"});
  auto third = session.add(Post{.title = "third", .author = ann});  // added before its author
  auto first = ann->posts.add(Post{.title = "first"});
  auto second = ann->posts.add(Post{.title = "second"});
  session.add(ann);
  session.flush();
  EXPECT_EQ(written_tables(), (Strings{"INSERT users", "INSERT posts", "INSERT posts", "INSERT posts"}));
  EXPECT_EQ(first->author_id, ann->id);
  EXPECT_EQ(second->author_id, ann->id);
  EXPECT_EQ(third->author_id, ann->id);
  EXPECT_EQ(third->author.get(), ann);
  auto comment = session.add(Comment{.post_id = first->id});
  session.flush();
  EXPECT_EQ(comment->body, "(empty)");
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(p.title, ',' ORDER BY p.id) FROM posts p JOIN users u ON u.id = p.author_id "
               "WHERE u.name = 'ann'"),
            "third,first,second");

  log_.clear();
  auto c = session.get<Comment>(comment->id);
  auto p = session.get<Post>(first->id);
  session.delete_(p);  // asked first, but its comment must go first
  session.delete_(c);
  EXPECT_TRUE(session.is_modified(c));  // marked for deletion
  session.commit();
  EXPECT_EQ(written_tables(), (Strings{"DELETE comments", "DELETE posts"}));
  EXPECT_EQ(db("SELECT count(*) FROM posts"), "2");
  EXPECT_FALSE(session.contains(p));
}

// Autoflush: a query sees what was added; with autoflush off it does not until flush().
TEST_F(IntegrationOrm, AutoflushBeforeQueries) {
  Session session(engine());
  session.add(User{.name = "zed", .email = "zed@example.com"});
  EXPECT_NE(session.scalars(select<User>().where(col(&User::name) == "zed")).one_or_none(), nullptr);
  Session manual(engine(), {.autoflush = false});
  manual.add(User{.name = "yan", .email = "yan@example.com"});
  EXPECT_EQ(manual.scalars(select<User>().where(col(&User::name) == "yan")).one_or_none(), nullptr);
  manual.flush();
  EXPECT_NE(manual.scalars(select<User>().where(col(&User::name) == "yan")).one_or_none(), nullptr);
}

// expire_on_commit (default): the next get() reloads the same object; off: the object stays as it was and
// get() runs no query until refresh(); expire() makes the next query repopulate it.
TEST_F(IntegrationOrm, ExpireOnCommitRefreshExpire) {
  Session session(engine());
  auto u = session.add(User{.name = "ann", .email = "ann@example.com"});
  session.commit();
  db("UPDATE users SET nickname = 'changed' WHERE name = 'ann'");
  auto again = session.get<User>(u->id);
  EXPECT_EQ(again.get(), u.get());
  EXPECT_EQ(u->nickname, "changed");

  Session keep(engine(), {.expire_on_commit = false});
  auto k = keep.add(User{.name = "kay", .email = "kay@example.com"});
  keep.commit();
  db("UPDATE users SET nickname = 'outside' WHERE name = 'kay'");
  log_.clear();
  EXPECT_EQ(keep.get<User>(k->id).get(), k.get());
  EXPECT_TRUE(statements("SELECT").empty());
  EXPECT_EQ(k->nickname, std::nullopt);
  keep.refresh(k);
  EXPECT_EQ(k->nickname, "outside");
  db("UPDATE users SET nickname = 'again' WHERE name = 'kay'");
  (void)keep.scalars(select<User>()).all();
  EXPECT_EQ(k->nickname, "outside");  // not expired: a query does not overwrite it
  keep.expire(k);
  (void)keep.scalars(select<User>()).all();
  EXPECT_EQ(k->nickname, "again");
  db("DELETE FROM users WHERE name = 'kay'");
  EXPECT_THROW(keep.refresh(k), ObjectDeletedError);
}

// merge(): a detached copy's columns land on the session's object for that key; a copy with no key is added.
TEST_F(IntegrationOrm, Merge) {
  auto ids = seed(1, 0);
  Session session(engine());
  auto u = session.get<User>(ids[0]);
  User copy = *u;
  copy.nickname = "merged";
  auto m = session.merge(copy);
  EXPECT_EQ(m.get(), u.get());
  EXPECT_EQ(u->nickname, "merged");
  auto fresh = session.merge(User{.name = "new", .email = "new@example.com"});
  session.commit();
  EXPECT_GT(fresh->id, 0);
  EXPECT_EQ(db("SELECT string_agg(name || ':' || coalesce(nickname, '-'), ',' ORDER BY id) FROM users"),
            "user0:merged,new:-");
}

// Lazy loading: a collection costs one SELECT on first access; the back reference is set without a query; a
// many-to-one already in the identity map costs none; a detached object's unloaded relationship raises.
TEST_F(IntegrationOrm, LazyLoading) {
  seed(3, 3);
  Session session(engine());
  auto users = session.scalars(select<User>().order_by(&User::id)).all();
  log_.clear();
  ASSERT_EQ(users[0]->posts.size(), 3u);
  EXPECT_EQ(statements("SELECT").size(), 1u);
  EXPECT_EQ(users[0]->posts[2]->title, "p0.2");
  log_.clear();
  EXPECT_EQ(users[0]->posts[0]->author.get(), users[0]);
  auto posts = session.scalars(select<Post>().where(col(&Post::author_id) == users[1]->id)).all();
  for (const auto& p : posts) EXPECT_EQ(p->author->name, "user1");
  EXPECT_EQ(statements("SELECT").size(), 1u);  // the posts query only: the author was in the identity map

  Session fresh(engine());
  auto lone = fresh.scalars(select<Post>().order_by(&Post::id).limit(2)).all();
  log_.clear();
  EXPECT_EQ(lone[0]->author->name, "user0");
  EXPECT_EQ(lone[1]->author.get(), lone[0]->author.get());
  EXPECT_EQ(statements("SELECT").size(), 1u);

  session.close();
  EXPECT_THROW((void)users[1]->posts.size(), DetachedInstanceError);
  EXPECT_EQ(users[0]->posts.size(), 3u);  // loaded before: still there

  // The session filled lone[i]->author without owning it: once the session is gone and nothing else holds the
  // author, the reference says so rather than dangling.
  fresh.close();
  EXPECT_THROW((void)lone[0]->author.get(), DetachedInstanceError);
}

// selectinload: exactly two SELECTs whatever the number of users (no N+1), collections and back references
// filled; selectinload of a many-to-one likewise; joinedload: one SELECT, parents not repeated.
TEST_F(IntegrationOrm, EagerLoadingStatementCounts) {
  seed(20, 3);
  {
    Session session(engine());
    log_.clear();
    auto users = session.scalars(select<User>().options(selectinload(&User::posts)).order_by(&User::id)).all();
    ASSERT_EQ(users.size(), 20u);
    std::size_t total = 0;
    for (const auto& u : users) {
      total += u->posts.size();
      for (const auto& p : u->posts) EXPECT_EQ(p->author.get(), u);
    }
    EXPECT_EQ(total, 60u);
    EXPECT_EQ(users[4]->posts[1]->title, "p4.1");
    EXPECT_EQ(statements("SELECT").size(), 2u);
    EXPECT_NE(statements("SELECT")[1].find(R"(WHERE "posts"."author_id" = ANY($1))"), std::string::npos);
  }
  {
    Session session(engine());
    log_.clear();
    auto few = session.scalars(select<User>().options(selectinload(&User::posts)).limit(2)).all();
    EXPECT_EQ(few.size(), 2u);
    EXPECT_EQ(few[0]->posts.size() + few[1]->posts.size(), 6u);
    EXPECT_EQ(statements("SELECT").size(), 2u);
  }
  {
    Session session(engine());
    log_.clear();
    auto posts = session.scalars(select<Post>().options(selectinload(&Post::author))).all();
    ASSERT_EQ(posts.size(), 60u);
    for (const auto& p : posts) EXPECT_EQ(p->author->id, p->author_id);
    EXPECT_EQ(statements("SELECT").size(), 2u);
  }
  {
    Session session(engine());
    log_.clear();
    auto users = session.scalars(select<User>().options(joinedload(&User::posts))).all();
    ASSERT_EQ(users.size(), 20u);
    for (const auto& u : users) EXPECT_EQ(u->posts.size(), 3u);
    auto posts = session.scalars(select<Post>().options(joinedload(&Post::author)).where(col(&Post::score) == 0)).all();
    EXPECT_EQ(posts.size(), 20u);
    for (const auto& p : posts) EXPECT_EQ(p->author->id, p->author_id);
    EXPECT_EQ(statements("SELECT").size(), 2u);
  }
}

// LIMIT/OFFSET with a joinedload of a collection count parents, not joined rows: the limited parent query is a
// subquery and the collection is joined outside it (as SQLAlchemy does), so each parent comes with all its
// children.
TEST_F(IntegrationOrm, JoinedloadCollectionWithLimitOffset) {
  auto ids = seed(5, 3);
  Session session(engine());
  auto users = session
                   .scalars(select<User>()
                                .options(joinedload(&User::posts))
                                .where(col(&User::name) != "user4")
                                .order_by(col(&User::id).desc())
                                .limit(2)
                                .offset(1))
                   .all();
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0]->id, ids[2]);
  EXPECT_EQ(users[1]->id, ids[1]);
  for (const auto& u : users) {
    ASSERT_EQ(u->posts.size(), 3u) << u->name;
    for (const auto& p : u->posts) EXPECT_EQ(p->author.get(), u);
  }
  EXPECT_EQ(statements("SELECT").size(), 1u);
  // A many-to-one joinedload repeats no parent row: LIMIT applies to the query as written.
  auto posts = session
                   .scalars(select<Post>()
                                .options(joinedload(&Post::author))
                                .where(col(&Post::score) == 1)
                                .order_by(&Post::id)
                                .limit(2))
                   .all();
  ASSERT_EQ(posts.size(), 2u);
  EXPECT_EQ(posts[0]->author->id, ids[0]);
  EXPECT_EQ(posts[1]->author->id, ids[1]);
  // Expression items and a collection joinedload under LIMIT: one row per parent, in order.
  auto rows = session
                  .execute(select<User>(col(&User::name))
                               .options(joinedload(&User::posts))
                               .order_by(&User::id)
                               .limit(3))
                  .all();
  ASSERT_EQ(rows.size(), 3u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(std::get<0>(rows[i])->id, ids[i]);
    EXPECT_EQ(std::get<1>(rows[i]), fmt::format("user{}", i));
    EXPECT_EQ(std::get<0>(rows[i])->posts.size(), 3u);
  }
}

// begin_nested + rollback: the savepoint's writes are undone in the database and in the session — objects added
// inside leave it (server keys cleared), a deletion inside is undone, objects changed inside (flushed, or only in
// memory) show their restored rows; what was flushed before the savepoint stays, and the transaction goes on.
TEST_F(IntegrationOrm, SavepointRollbackRestoresOrmState) {
  auto ids = seed(3, 1);
  Session session(engine());
  auto users = session.scalars(select<User>().order_by(&User::id)).all();
  users[2]->nickname = "before";  // flushed by begin_nested, outside the savepoint
  auto kept = session.add(User{.name = "kept", .email = "kept@example.com"});
  {
    auto sp = session.begin_nested();
    EXPECT_TRUE(sp.is_nested());
    EXPECT_NE(kept->id, 0);
    users[0]->name = "renamed";
    session.delete_(users[1]->posts[0]);
    session.delete_(users[1]);
    auto inner = session.add(User{.name = "inner", .email = "inner@example.com"});
    session.flush();
    EXPECT_NE(inner->id, 0);
    auto pending = session.add(User{.name = "pending", .email = "pending@example.com"});
    users[2]->email = "memory-only@example.com";
    EXPECT_EQ(db("SELECT count(*) FROM users"), "3");  // other connections see nothing uncommitted
    sp.rollback();
    EXPECT_FALSE(sp.is_active());
    EXPECT_FALSE(session.contains(inner));
    EXPECT_FALSE(session.contains(pending));
    EXPECT_EQ(inner->id, 0);  // adding it again inserts it afresh
  }
  EXPECT_TRUE(session.in_transaction());
  EXPECT_EQ(users[0]->name, "user0");
  EXPECT_EQ(users[2]->email, "u2@example.com");
  EXPECT_EQ(users[2]->nickname, "before");
  EXPECT_FALSE(session.is_modified(users[0]));
  EXPECT_TRUE(session.contains(users[1]));
  EXPECT_EQ(session.get<User>(ids[1]).get(), users[1].get());
  EXPECT_EQ(users[1]->posts.size(), 1u);
  EXPECT_TRUE(session.contains(kept));
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(name || ':' || coalesce(nickname, '-') || ':' || email, ',' ORDER BY id) FROM users"),
            "user0:-:u0@example.com,user1:-:u1@example.com,user2:before:u2@example.com,kept:-:kept@example.com");
  EXPECT_EQ(db("SELECT count(*) FROM posts"), "3");
}

// begin_nested + commit releases the savepoint: its writes join the enclosing transaction (so that one's rollback
// undoes them); nested savepoints roll back one level at a time; leaving a savepoint's scope uncommitted rolls
// it back.
TEST_F(IntegrationOrm, SavepointReleaseAndNesting) {
  Session session(engine());
  auto outer = session.add(User{.name = "outer", .email = "outer@example.com"});
  {
    auto sp = session.begin_nested();
    auto a = session.add(User{.name = "a", .email = "a@example.com"});
    {
      auto inner = session.begin_nested();
      auto b = session.add(User{.name = "b", .email = "b@example.com"});
      a->nickname = "changed in inner";
      session.flush();
      inner.rollback();
      EXPECT_FALSE(session.contains(b));
      EXPECT_EQ(a->nickname, std::nullopt);  // read again: the inner savepoint's UPDATE is gone
    }
    {
      auto forgotten = session.begin_nested();
      session.add(User{.name = "dropped", .email = "dropped@example.com"});
    }  // not committed: rolled back to it
    sp.commit();
    EXPECT_FALSE(sp.is_active());
    EXPECT_TRUE(session.contains(a));
  }
  EXPECT_EQ(session.scalar(select(func::count(&User::id))), 2);
  session.rollback();  // the released savepoint's INSERT goes with the transaction
  EXPECT_FALSE(session.contains(outer));
  EXPECT_EQ(db("SELECT count(*) FROM users"), "0");

  auto c = session.add(User{.name = "c", .email = "c@example.com"});
  {
    auto sp = session.begin_nested();
    c->name = "c2";
    sp.commit();
  }
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(name, ',') FROM users"), "c2");
}

// The point of savepoints in SQLAlchemy: a flush that fails inside one rolls back only that savepoint (the
// failing object leaves the session), and the transaction carries on with what was done before it.
TEST_F(IntegrationOrm, FailedFlushInsideSavepointKeepsTransaction) {
  Session session(engine());
  auto first = session.add(User{.name = "first", .email = "same@example.com"});
  std::shared_ptr<User> dup;
  {
    auto sp = session.begin_nested();
    dup = session.add(User{.name = "dup", .email = "same@example.com"});
    EXPECT_THROW(sp.commit(), UniqueViolation);
    EXPECT_FALSE(sp.is_active());
  }
  EXPECT_TRUE(session.in_transaction());
  EXPECT_FALSE(session.contains(dup));
  EXPECT_TRUE(session.contains(first));
  session.add(User{.name = "second", .email = "second@example.com"});
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(name, ',' ORDER BY id) FROM users"), "first,second");
}

// Composite primary keys: get() by std::tuple finds the identity map's object without a query, or reads the
// row; UPDATE and DELETE address the row by every key column; bulk UPDATE expires the objects it touched; a
// savepoint rollback reads changed objects again by their whole key; a wrong number of key values is an error.
TEST_F(IntegrationOrm, CompositePrimaryKey) {
  auto models = metadata<Membership>();
  models.drop_all(engine());
  models.create_all(engine());
  {
    Session s(engine());
    s.add(Membership{.user_id = 1, .org_id = 10, .role = "owner"});
    s.add(Membership{.user_id = 1, .org_id = 20, .role = "member"});
    s.add(Membership{.user_id = 2, .org_id = 10, .role = "member"});
    s.commit();
  }
  Session session(engine());
  auto all = session.scalars(select<Membership>().order_by(&Membership::user_id, &Membership::org_id)).all();
  ASSERT_EQ(all.size(), 3u);
  log_.clear();
  EXPECT_EQ(session.get<Membership>(std::tuple{std::int64_t{1}, 20}).get(), all[1].get());
  EXPECT_EQ(session.get<Membership>(std::tuple{std::int64_t{2}, 10}).get(), all[2].get());
  EXPECT_TRUE(statements("SELECT").empty());
  EXPECT_EQ(session.get<Membership>(std::tuple{std::int64_t{2}, 20}), nullptr);
  EXPECT_THROW((void)session.get<Membership>(std::int64_t{1}), ArgumentError);
  all[0]->role = "admin";
  session.delete_(all[2]);
  log_.clear();
  session.flush();
  ASSERT_EQ(statements("UPDATE").size(), 1u);
  EXPECT_NE(statements("UPDATE")[0].find(R"(WHERE "memberships"."user_id" = $2 AND "memberships"."org_id" = $3)"),
            std::string::npos)
      << statements("UPDATE")[0];
  ASSERT_EQ(statements("DELETE").size(), 1u);
  EXPECT_NE(statements("DELETE")[0].find(R"(WHERE "memberships"."user_id" = $1 AND "memberships"."org_id" = $2)"),
            std::string::npos)
      << statements("DELETE")[0];
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(user_id || ':' || org_id || ':' || role, ',' ORDER BY user_id, org_id) FROM "
               "memberships"),
            "1:10:admin,1:20:member");

  Session fresh(engine());
  auto m = fresh.get<Membership>(std::tuple{std::int64_t{1}, 20});
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->role, "member");
  EXPECT_EQ(fresh.scalars(select<Membership>().where(col(&Membership::org_id) == 20)).one().get(), m.get());
  EXPECT_EQ(fresh.execute(update<Membership>().where(col(&Membership::user_id) == 1).values(&Membership::role, "bulk"))
                .rowcount(),
            2);
  EXPECT_EQ(fresh.get<Membership>(std::tuple{std::int64_t{1}, 20}).get(), m.get());
  EXPECT_EQ(m->role, "bulk");
  {
    auto sp = fresh.begin_nested();
    m->role = "inside";
    fresh.flush();
    sp.rollback();
  }
  EXPECT_EQ(m->role, "bulk");
  fresh.commit();
  EXPECT_EQ(db("SELECT string_agg(role, ',') FROM memberships"), "bulk,bulk");
  models.drop_all(engine());
}

// rollback() discards changes to loaded objects, whether only in memory or already flushed: each object shows
// its row again and is not modified, so neither the next autoflush nor commit() writes them back.
TEST_F(IntegrationOrm, RollbackDiscardsChangesOfLoadedObjects) {
  auto ids = seed(2, 0);
  Session session(engine());
  auto memory = session.get<User>(ids[0]);
  auto flushed = session.get<User>(ids[1]);
  flushed->nickname = "flushed";
  session.flush();
  EXPECT_EQ(db("SELECT count(*) FROM users WHERE nickname IS NOT NULL"), "0");  // uncommitted
  memory->name = "memory-only";
  session.rollback();
  EXPECT_FALSE(session.in_transaction());
  EXPECT_TRUE(session.contains(memory));
  EXPECT_TRUE(session.contains(flushed));
  EXPECT_EQ(memory->name, "user0");
  EXPECT_EQ(flushed->nickname, std::nullopt);
  EXPECT_FALSE(session.is_modified(memory));
  EXPECT_FALSE(session.is_modified(flushed));
  log_.clear();
  EXPECT_EQ(session.scalar(select(func::count(&User::id)).where(col(&User::name) == "user0")), 1);  // autoflush
  EXPECT_EQ(session.get<User>(ids[0]).get(), memory.get());
  session.commit();
  EXPECT_TRUE(statements("UPDATE").empty());
  EXPECT_EQ(db("SELECT string_agg(name || ':' || coalesce(nickname, '-'), ',' ORDER BY id) FROM users"),
            "user0:-,user1:-");
}

// rollback() that cannot read (no transaction, autobegin off): a change made in memory is still discarded — the
// object shows the row it was last read with — and the object stays expired, so its next load reads it again.
TEST_F(IntegrationOrm, RollbackWithoutConnectionRestoresLastReadRow) {
  auto ids = seed(1, 0);
  Session session(engine(), {.autobegin = false, .expire_on_commit = false});
  std::shared_ptr<User> user;
  {
    auto tx = session.begin();
    user = session.get<User>(ids[0]);
    tx.commit();
  }
  user->name = "memory-only";
  session.rollback();
  EXPECT_FALSE(session.in_transaction());
  EXPECT_EQ(user->name, "user0");
  EXPECT_FALSE(session.is_modified(user));
  db(fmt::format("UPDATE users SET nickname = 'elsewhere' WHERE id = {}", ids[0]));
  auto tx = session.begin();
  EXPECT_EQ(session.get<User>(ids[0]).get(), user.get());
  EXPECT_EQ(user->nickname, "elsewhere");
  tx.commit();
}

// rollback() of an object added and never flushed: it leaves the session and nothing is inserted.
TEST_F(IntegrationOrm, RollbackExpungesPendingObjects) {
  Session session(engine());
  auto pending = session.add(User{.name = "pending", .email = "pending@example.com"});
  session.rollback();
  EXPECT_FALSE(session.contains(pending));
  EXPECT_EQ(pending->id, 0);
  session.commit();
  EXPECT_TRUE(statements("INSERT").empty());
  EXPECT_EQ(db("SELECT count(*) FROM users"), "0");
}

// rollback() after a flush INSERTed an object: the row is gone and the object is transient again (out of the
// session and its identity map, server-assigned key cleared), so adding it again inserts it afresh.
TEST_F(IntegrationOrm, RollbackOfFlushedInsertMakesObjectTransient) {
  Session session(engine());
  auto ann = session.add(User{.name = "ann", .email = "ann@example.com"});
  session.flush();
  const std::int64_t id = ann->id;
  ASSERT_NE(id, 0);
  session.rollback();
  EXPECT_FALSE(session.contains(ann));
  EXPECT_EQ(ann->id, 0);
  EXPECT_EQ(session.get<User>(id), nullptr);
  session.commit();
  EXPECT_EQ(db("SELECT count(*) FROM users"), "0");
  session.add(ann);
  session.commit();
  EXPECT_NE(ann->id, 0);
  EXPECT_EQ(db("SELECT string_agg(name, ',') FROM users"), "ann");
}

// rollback() after a flush DELETEd loaded objects (and of a delete_() not yet flushed): they are persistent
// again, in the identity map, and their rows are still there.
TEST_F(IntegrationOrm, RollbackOfFlushedDeleteRestoresObjects) {
  auto ids = seed(2, 1);
  Session session(engine());
  auto user = session.get<User>(ids[0]);
  auto post = user->posts[0];
  auto marked = session.get<User>(ids[1]);
  session.delete_(post);
  session.delete_(user);
  session.flush();
  EXPECT_FALSE(session.contains(user));
  EXPECT_EQ(session.get<User>(ids[0]), nullptr);
  session.delete_(marked);
  session.rollback();
  EXPECT_TRUE(session.contains(user));
  EXPECT_TRUE(session.contains(post));
  EXPECT_TRUE(session.contains(marked));
  EXPECT_FALSE(session.is_modified(user));
  EXPECT_FALSE(session.is_modified(marked));
  EXPECT_EQ(session.get<User>(ids[0]).get(), user.get());
  EXPECT_EQ(session.get<User>(ids[1]).get(), marked.get());
  EXPECT_EQ(user->posts.size(), 1u);
  EXPECT_EQ(user->posts[0].get(), post.get());
  log_.clear();
  session.commit();
  EXPECT_TRUE(statements("DELETE").empty());
  EXPECT_EQ(db("SELECT count(*) FROM users"), "2");
  EXPECT_EQ(db("SELECT count(*) FROM posts"), "2");
}

// A flush that fails (unique violation) after UPDATEing a loaded object, then rollback() as SQLAlchemy asks
// for: the object shows its row, the failing one is gone, and the session goes on with nothing of that work.
TEST_F(IntegrationOrm, RollbackAfterFailedFlushLeavesSessionUsable) {
  auto ids = seed(1, 0);
  Session session(engine());
  auto user = session.get<User>(ids[0]);
  user->nickname = "written before the failure";
  auto dup = session.add(User{.name = "dup", .email = "u0@example.com"});
  EXPECT_THROW(session.flush(), UniqueViolation);
  session.rollback();
  EXPECT_FALSE(session.contains(dup));
  EXPECT_TRUE(session.contains(user));
  EXPECT_EQ(user->nickname, std::nullopt);
  EXPECT_FALSE(session.is_modified(user));
  user->name = "renamed";
  session.add(User{.name = "next", .email = "next@example.com"});
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(name || ':' || coalesce(nickname, '-'), ',' ORDER BY id) FROM users"),
            "renamed:-,next:-");
}

// A unique violation in flush: the DBError class and SQLSTATE, the failing object attached and described; the
// transaction rolled back, objects of that transaction out of the session with server keys cleared; the
// session then works as before.
TEST_F(IntegrationOrm, FailedFlushRollsBack) {
  Session session(engine());
  auto first = session.add(User{.name = "a", .email = "dup@example.com"});
  session.commit();
  auto ok = session.add(User{.name = "b", .email = "b@example.com"});
  auto dup = session.add(User{.name = "c", .email = "dup@example.com"});
  try {
    session.flush();
    FAIL() << "no error";
  } catch (const UniqueViolation& e) {
    EXPECT_EQ(e.sqlstate(), "23505");
    EXPECT_EQ(e.info().constraint, "users_email_key");
    EXPECT_EQ(e.instance<User>(), dup);
    EXPECT_EQ(e.instance<Post>(), nullptr);
    EXPECT_NE(std::string(e.what()).find("while flushing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("email='dup@example.com'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(session.in_transaction());
  EXPECT_FALSE(session.contains(ok));
  EXPECT_FALSE(session.contains(dup));
  EXPECT_EQ(ok->id, 0);  // its INSERT was undone: adding it again inserts it afresh
  EXPECT_TRUE(session.contains(first));
  session.add(ok);
  session.commit();
  EXPECT_EQ(db("SELECT string_agg(name, ',' ORDER BY id) FROM users"), "a,b");

  session.add(Post{.title = "orphan", .author_id = 424242});
  EXPECT_THROW(session.commit(), ForeignKeyViolation);
  EXPECT_EQ(session.scalar(select(func::count(&Post::id))), 0);
  EXPECT_EQ(db("SELECT count(*) FROM posts"), "0");
}

// session.execute(update<T>()/delete_<T>()): rowcount, and the identity map kept in step (updated objects
// reload, deleted ones are gone).
TEST_F(IntegrationOrm, BulkUpdateAndDelete) {
  auto ids = seed(3, 1);
  Session session(engine());
  auto users = session.scalars(select<User>().order_by(&User::id)).all();
  auto r = session.execute(update<User>().where(col(&User::id) != ids[0]).values(&User::nickname, "bulk"));
  EXPECT_EQ(r.rowcount(), 2);
  EXPECT_EQ(users[1]->nickname, std::nullopt);
  EXPECT_EQ(session.get<User>(ids[1]).get(), users[1].get());
  EXPECT_EQ(users[1]->nickname, "bulk");
  EXPECT_EQ(users[0]->nickname, std::nullopt);
  auto posts = session.scalars(select<Post>()).all();
  EXPECT_EQ(session.execute(delete_<Post>().where(col(&Post::author_id) == ids[2])).rowcount(), 1);
  EXPECT_EQ(session.scalars(select<Post>()).all().size(), 2u);
  session.commit();
  EXPECT_EQ(db("SELECT count(*) FROM posts"), "2");
}

}  // namespace
}  // namespace pooler::test
