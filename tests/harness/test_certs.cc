// TestCa: openssl req / x509 through run_command.
#include "tests/harness/test_certs.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "tests/harness/run_command.h"

namespace pooler::test {

namespace {

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult result = run_command(argv, std::chrono::seconds(60));
  if (result.exit_code != 0) throw std::runtime_error("openssl failed: " + describe(argv, result));
}

}  // namespace

TestCa::TestCa(const std::string& ca_name) : temp_("pooler-ca-") {
  // The directory must be searchable by the postgres user, who reads the server's files from it.
  ::chmod(temp_.path().c_str(), 0755);
  ca_cert_ = temp_.path() / "ca.crt";
  ca_key_ = temp_.path() / "ca.key";
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           ca_key_.string(), "-out", ca_cert_.string(), "-days", "2", "-subj", "/CN=" + ca_name, "-addext",
           "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  ::chmod(ca_cert_.c_str(), 0644);
}

IssuedCert TestCa::issue(const std::string& file_stem, const std::string& cn, bool server, bool for_postgres) {
  IssuedCert out{temp_.path() / (file_stem + ".crt"), temp_.path() / (file_stem + ".key")};
  const std::filesystem::path csr = temp_.path() / (file_stem + ".csr");
  const std::filesystem::path ext = temp_.path() / (file_stem + ".ext");
  {
    std::ofstream f(ext);
    f << "basicConstraints=CA:FALSE\n";
    if (server) {
      f << "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
    } else {
      f << "extendedKeyUsage=clientAuth\n";
    }
  }
  openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           out.key.string(), "-out", csr.string(), "-subj", "/CN=" + cn});
  openssl({"x509", "-req", "-in", csr.string(), "-CA", ca_cert_.string(), "-CAkey", ca_key_.string(),
           "-CAcreateserial", "-out", out.cert.string(), "-days", "2", "-extfile", ext.string()});
  ::chmod(out.key.c_str(), 0600);
  ::chmod(out.cert.c_str(), 0644);
  if (for_postgres && ::geteuid() == 0) {
    passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr || ::chown(out.key.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error(fmt::format("cannot hand {} to the postgres user", out.key.string()));
    }
  }
  return out;
}

std::filesystem::path TestCa::make_crl(const std::string& file_stem,
                                       const std::vector<std::filesystem::path>& revoked) {
  // `openssl ca` keeps revocations in an index file; a fresh one per CRL makes the list exactly `revoked`.
  const std::filesystem::path work = temp_.path() / (file_stem + ".crl.d");
  std::filesystem::create_directories(work);
  const std::filesystem::path index = work / "index.txt";
  const std::filesystem::path conf = work / "ca.cnf";
  const std::filesystem::path out = temp_.path() / (file_stem + ".crl");
  { std::ofstream f(index, std::ios::trunc); }
  {
    std::ofstream f(work / "crlnumber", std::ios::trunc);
    f << "01\n";
  }
  {
    std::ofstream f(conf, std::ios::trunc);
    f << "[ca]\ndefault_ca = test_ca\n[test_ca]\n"
      << "database = " << index.string() << "\n"
      << "crlnumber = " << (work / "crlnumber").string() << "\n"
      << "default_md = sha256\ndefault_crl_days = 2\n";
  }
  for (const std::filesystem::path& cert : revoked) {
    openssl({"ca", "-config", conf.string(), "-keyfile", ca_key_.string(), "-cert", ca_cert_.string(), "-revoke",
             cert.string()});
  }
  openssl({"ca", "-config", conf.string(), "-keyfile", ca_key_.string(), "-cert", ca_cert_.string(), "-gencrl",
           "-out", out.string()});
  ::chmod(out.c_str(), 0644);
  return out;
}

}  // namespace pooler::test
