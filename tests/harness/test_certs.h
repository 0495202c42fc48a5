// A throwaway certificate authority for TLS tests, made at test time with the openssl CLI (P-256 keys, valid
// for two days): a CA certificate and the server and client certificates it signs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tests/harness/temp_dir.h"

namespace pooler::test {

struct IssuedCert {
  std::filesystem::path cert;
  std::filesystem::path key;
};

class TestCa {
 public:
  // Creates the CA in a fresh temp dir (readable by the `postgres` OS user, so a test cluster can load
  // files from it). Throws std::runtime_error with openssl's output when a command fails.
  explicit TestCa(const std::string& ca_name = "pooler test CA");
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::filesystem::path& ca_cert() const { return ca_cert_; }
  const std::filesystem::path& dir() const { return temp_.path(); }

  // A certificate for `cn` signed by this CA, as <file_stem>.crt / <file_stem>.key (mode 0600). Server
  // certificates carry subjectAltName DNS:localhost and IP:127.0.0.1 so verify-full works on loopback.
  // for_postgres: the key is owned by the `postgres` OS user when we are root, as the server requires.
  IssuedCert issue(const std::string& file_stem, const std::string& cn, bool server, bool for_postgres = false);

  // A PEM CRL signed by this CA revoking exactly `revoked` (certificates it issued), written to <file_stem>.crl.
  std::filesystem::path make_crl(const std::string& file_stem, const std::vector<std::filesystem::path>& revoked);

 private:
  TempDir temp_;
  std::filesystem::path ca_cert_;
  std::filesystem::path ca_key_;
};

}  // namespace pooler::test
