// test_certificates.h — the certificates the TLS tests use, made by the
// openssl command in a temporary folder (EC P-256 keys, valid two days):
// the cluster's CA, a server certificate it signs for 127.0.0.1 and
// localhost, a node's client certificate, and what must be refused — a
// second CA with a server and a client certificate of its own, and a
// server certificate of the right CA for another name only. Throws
// std::runtime_error, with openssl's words, when a file cannot be made (a
// test fails on it; a benchmark says why it stopped).
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/memosd_process.h"

namespace memos::testing {

inline constexpr const char* kOpenssl = "/usr/bin/openssl";

// A server's files, as nats-server and etcd take them.
struct ServerTls {
  std::string cert, key, ca;  // ca: the CA that signs the clients it accepts
};

class TestCertificates {
 public:
  TestCertificates() {
    const std::string& d = dir_.path();
    make_ca("ca");
    make_ca("other-ca");
    make_signed("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    make_signed("node", "ca", "extendedKeyUsage=clientAuth");
    make_signed("other-server", "other-ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    make_signed("other-node", "other-ca", "extendedKeyUsage=clientAuth");
    make_signed("misnamed", "ca", "subjectAltName=DNS:elsewhere.example");
    std::ofstream(d + "/garbage.pem") << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n";
  }

  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string ca() const { return path("ca.pem"); }
  std::string other_ca() const { return path("other-ca.pem"); }
  // The node's client certificate and key ("node"), or another's.
  std::string cert(const std::string& who = "node") const { return path(who + ".pem"); }
  std::string key(const std::string& who = "node") const { return path(who + ".key"); }
  // A server with certificate `who`, verifying clients against the CA.
  ServerTls server(const std::string& who = "server") const { return {cert(who), key(who), ca()}; }

 private:
  void run(const std::vector<std::string>& argv) {
    std::string out, err;
    const int rc = run_command(argv, &out, &err);
    if (rc != 0) throw std::runtime_error("openssl " + argv[1] + " failed: " + err);
  }
  void make_ca(const std::string& name) {
    run({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", path(name + ".key"), "-out", path(name + ".pem"), "-days", "2",
         "-subj", "/CN=memos test " + name});
  }
  void make_signed(const std::string& name, const std::string& ca, const std::string& extension) {
    std::ofstream(path(name + ".ext")) << extension << "\n";
    run({kOpenssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", path(name + ".key"), "-out", path(name + ".csr"), "-subj",
         "/CN=memos test " + name});
    run({kOpenssl, "x509", "-req", "-in", path(name + ".csr"), "-CA", path(ca + ".pem"), "-CAkey",
         path(ca + ".key"), "-CAcreateserial", "-out", path(name + ".pem"), "-days", "2",
         "-extfile", path(name + ".ext")});
  }

  TempDir dir_;
};

}  // namespace memos::testing
