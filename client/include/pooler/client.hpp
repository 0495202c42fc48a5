// libpooler-client: SQLAlchemy 2.0's Core API in C++ over libpq, with the pooler's QueuePool in process.
//
//   auto engine = pooler::create_engine("postgresql://app:secret@127.0.0.1:6432/app", {.pool_size = 5});
//   auto conn = engine.connect();
//   auto r = conn.execute(pooler::text("SELECT name FROM users WHERE id = :id"), {{"id", 1}});
//   conn.commit();
#pragma once

#include "pooler/connection.hpp"
#include "pooler/engine.hpp"
#include "pooler/errors.hpp"
#include "pooler/orm.hpp"
#include "pooler/result.hpp"
#include "pooler/session.hpp"
#include "pooler/text.hpp"
#include "pooler/types.hpp"
#include "pooler/url.hpp"
