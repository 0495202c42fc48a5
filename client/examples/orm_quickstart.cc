// The ORM in one page: mapped structs, create_all, Session add/commit, select() with filters, joins and
// aggregates, the identity map, eager loading, a failed flush. The SQLAlchemy it mirrors is in README.md.
// Usage: pooler_orm_quickstart postgresql://user:pass@host:port/db
#include <cstdio>
#include <cstdint>
#include <string>
#include <tuple>

#include <pooler/client.hpp>

struct Post;
struct User {
  std::int64_t id{};
  std::string name{};
  std::string email{};
  bool is_active = true;
  pooler::orm::Many<Post> posts{};  // one-to-many
};
struct Post {
  std::int64_t id{};
  std::string title{};
  std::int64_t author_id{};
  pooler::orm::One<User> author{};  // many-to-one
};

template <>
struct pooler::orm::mapping<User> {
  static constexpr std::string_view table = "quickstart_users";
  static inline const auto columns = std::tuple{
      column(&User::id, "id", BigInteger).primary_key(),
      column(&User::name, "name", String(100)),
      column(&User::email, "email", String(255)).unique(),
      column(&User::is_active, "is_active", Boolean).server_default("true"),
  };
  static inline const auto relationships = std::tuple{
      relationship(&User::posts, &Post::author_id).back_populates(&Post::author),
  };
};

template <>
struct pooler::orm::mapping<Post> {
  static constexpr std::string_view table = "quickstart_posts";
  static inline const auto columns = std::tuple{
      column(&Post::id, "id", BigInteger).primary_key(),
      column(&Post::title, "title", String(200)),
      column(&Post::author_id, "author_id", BigInteger).foreign_key(&User::id).index(),
  };
  static inline const auto relationships = std::tuple{
      relationship(&Post::author, &Post::author_id).back_populates(&User::posts),
  };
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s postgresql://user:pass@host:port/db\n", argv[0]);
    return 2;
  }
  using namespace pooler::orm;
  try {
    auto engine = pooler::create_engine(argv[1]);
    auto models = metadata<User, Post>();
    models.drop_all(engine);
    models.create_all(engine);  // CREATE TABLE IF NOT EXISTS, users before posts

    pooler::Session session(engine);
    auto ann = session.add(User{.name = "ann", .email = "ann@example.com"});
    ann->posts.add(Post{.title = "hello"});  // saved with ann (cascade), author_id filled at flush
    ann->posts.add(Post{.title = "again"});
    session.add(User{.name = "root", .email = "root@example.com"});
    session.add(User{.name = "bob", .email = "bob@admin.org", .is_active = false});
    session.commit();  // INSERT … RETURNING fills the ids
    std::printf("ann has id %lld\n", static_cast<long long>(ann->id));

    auto active = session.scalars(select<User>().where(col(&User::is_active) == true).order_by(desc(&User::id)).limit(10)).all();
    for (const auto& u : active) std::printf("active: %s\n", u->name.c_str());
    auto admins = session.scalars(select<User>()
                                      .where(or_(col(&User::name) == "root", col(&User::email).like("%@admin%")))
                                      .order_by(&User::name))
                      .all();
    for (const auto& u : admins) std::printf("admin: %s\n", u->name.c_str());
    auto n = session.scalar(select(func::count(&User::id)).where(col(&User::is_active) == true));
    std::printf("active users: %lld\n", static_cast<long long>(n.value_or(0)));
    auto pairs = session.execute(select<User, Post>().join<Post>(col(&User::id) == col(&Post::author_id)).order_by(&Post::id)).all();
    for (const auto& [user, post] : pairs) std::printf("%s wrote %s\n", user->name.c_str(), post->title.c_str());
    auto one = session.get<User>(ann->id);
    std::printf("identity map: %s\n", one == ann && std::get<0>(pairs[0]) == ann ? "same object" : "DIFFERENT");
    auto with_posts = session.scalars(select<User>().options(selectinload(&User::posts)).order_by(&User::id)).all();
    for (const auto& u : with_posts) std::printf("%s: %zu posts\n", u->name.c_str(), u->posts.size());

    one->name = "ann b.";  // UPDATE of the changed column only, at the next flush
    session.commit();
    try {
      session.add(User{.name = "ann again", .email = "ann@example.com"});
      session.commit();
    } catch (const pooler::IntegrityError& e) {  // the session was rolled back; it carries on
      std::printf("duplicate refused: SQLSTATE %s\n", e.sqlstate().c_str());
    }
    std::printf("users: %lld\n", static_cast<long long>(session.scalar(select(func::count(&User::id))).value_or(0)));
    session.close();
    models.drop_all(engine);
    return 0;
  } catch (const pooler::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
