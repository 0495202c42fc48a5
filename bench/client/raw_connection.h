// What the client benchmarks share: a raw libpq connection to the same server an Engine points at, for the
// "raw libpq" side of each comparison.
#pragma once

#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "pooler/client.hpp"

// A libpq connection with the engine's URL (its keywords, as the library passes them); null after printing
// libpq's message when it fails.
inline PGconn* connect_raw(const pooler::Engine& engine) {
  std::string conninfo;
  for (const auto& [k, v] : engine.url().to_conninfo()) conninfo += fmt::format("{}='{}' ", k, v);
  PGconn* raw = PQconnectdb(conninfo.c_str());
  if (PQstatus(raw) != CONNECTION_OK) {
    std::fprintf(stderr, "raw libpq connect failed: %s", PQerrorMessage(raw));
    PQfinish(raw);
    return nullptr;
  }
  return raw;
}
