// Mapped types shared by the ORM tests: users ← posts ← comments (foreign keys), plus a table whose names need
// quoting. Every member has an initializer so designated initializers stay -Wextra clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "pooler/orm.hpp"

namespace pooler::test::orm_models {

struct Post;
struct User {
  std::int64_t id{};
  std::string name{};
  std::string email{};
  bool is_active = true;
  std::optional<std::string> nickname{};
  std::optional<std::chrono::sys_time<std::chrono::microseconds>> created_at{};  // server default now()
  pooler::orm::Many<Post> posts{};
};

struct Post {
  std::int64_t id{};
  std::string title{};
  std::int64_t author_id{};
  std::int32_t score = 0;
  pooler::orm::One<User> author{};
};

struct Comment {
  std::int64_t id{};
  std::int64_t post_id{};
  std::optional<std::string> body{};  // client-side default "(empty)"
};

// A composite primary key (user_id, org_id); no relationships refer to it.
struct Membership {
  std::int64_t user_id{};
  std::int32_t org_id{};
  std::string role{};
};

// Names that are reserved words or hold a double quote.
struct Odd {
  std::int32_t key{};
  std::optional<std::string> select{};
};

}  // namespace pooler::test::orm_models

template <>
struct pooler::orm::mapping<pooler::test::orm_models::User> {
  using User = pooler::test::orm_models::User;
  using Post = pooler::test::orm_models::Post;
  static constexpr std::string_view table = "users";
  static inline const auto columns = std::tuple{
      column(&User::id, "id", BigInteger).primary_key(),
      column(&User::name, "name", String(100)),
      column(&User::email, "email", String(255)).unique(),
      column(&User::is_active, "is_active", Boolean).server_default("true"),
      column(&User::nickname, "nickname", Text),
      column(&User::created_at, "created_at", DateTime).server_default("now()"),
  };
  static inline const auto relationships = std::tuple{
      relationship(&User::posts, &Post::author_id).back_populates(&Post::author),
  };
};

template <>
struct pooler::orm::mapping<pooler::test::orm_models::Post> {
  using User = pooler::test::orm_models::User;
  using Post = pooler::test::orm_models::Post;
  static constexpr std::string_view table = "posts";
  static inline const auto columns = std::tuple{
      column(&Post::id, "id", BigInteger).primary_key(),
      column(&Post::title, "title", Text),
      column(&Post::author_id, "author_id", BigInteger).foreign_key(&User::id).index(),
      column(&Post::score, "score", Integer),
  };
  static inline const auto relationships = std::tuple{
      relationship(&Post::author, &Post::author_id).back_populates(&User::posts),
  };
};

template <>
struct pooler::orm::mapping<pooler::test::orm_models::Comment> {
  using Comment = pooler::test::orm_models::Comment;
  using Post = pooler::test::orm_models::Post;
  static constexpr std::string_view table = "comments";
  static inline const auto columns = std::tuple{
      column(&Comment::id, "id", BigInteger).primary_key(),
      column(&Comment::post_id, "post_id", BigInteger).foreign_key(&Post::id, "CASCADE"),
      column(&Comment::body, "body", Text).default_("(empty)"),
  };
};

template <>
struct pooler::orm::mapping<pooler::test::orm_models::Membership> {
  using Membership = pooler::test::orm_models::Membership;
  static constexpr std::string_view table = "memberships";
  static inline const auto columns = std::tuple{
      column(&Membership::user_id, "user_id", BigInteger).primary_key(),
      column(&Membership::org_id, "org_id", Integer).primary_key(),
      column(&Membership::role, "role", Text),
  };
};

template <>
struct pooler::orm::mapping<pooler::test::orm_models::Odd> {
  using Odd = pooler::test::orm_models::Odd;
  static constexpr std::string_view table = "odd \"table\"";
  static inline const auto columns = std::tuple{
      column(&Odd::key, "key", Integer).primary_key().autoincrement(false),
      column(&Odd::select, "select", Text),
  };
};
