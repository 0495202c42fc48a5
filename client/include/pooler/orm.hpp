// The ORM half of libpooler-client: declarative mapping (mapping<T>), metadata<Ts...>() for DDL, select<T>()
// / update<T>() / delete_<T>() statements, and Session's unit of work (pooler/session.hpp).
//
//   auto ann = session.add(User{.name = "ann", .email = "ann@example.com"});
//   session.commit();                                            // INSERT … RETURNING fills ann->id
//   using namespace pooler::orm;
//   auto active = session.scalars(select<User>().where(col(&User::is_active) == true)).all();
#pragma once

#include "pooler/orm/expression.hpp"
#include "pooler/orm/mapping.hpp"
#include "pooler/orm/metadata.hpp"
#include "pooler/orm/statement.hpp"
#include "pooler/orm/unit_of_work.hpp"
#include "pooler/session.hpp"
