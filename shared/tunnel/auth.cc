#include "shared/tunnel/auth.h"

#include <cstring>

namespace tg::tunnel {

namespace {

template <size_t N>
std::string_view bytes_of(const std::array<uint8_t, N>& a) {
  return std::string_view(reinterpret_cast<const char*>(a.data()), N);
}

}  // namespace

std::string auth_signed_bytes(const Nonce& nonce, const crypto::Sha256& hub_spki_sha256,
                              const crypto::PublicKey& agent_pubkey) {
  std::string out;
  out.reserve(kAuthSignedSize);
  out.append(kAuthDomain);
  out.push_back('\0');
  out.append(bytes_of(nonce));
  out.append(bytes_of(hub_spki_sha256));
  out.append(bytes_of(agent_pubkey));
  return out;
}

crypto::Signature sign_auth(const crypto::KeyPair& agent, const Nonce& nonce,
                            const crypto::Sha256& hub_spki_sha256) {
  return agent.sign(auth_signed_bytes(nonce, hub_spki_sha256, agent.public_key()));
}

bool verify_auth(const crypto::PublicKey& agent_pubkey, const crypto::Signature& sig,
                 const Nonce& nonce, const crypto::Sha256& hub_spki_sha256) {
  return crypto::verify(agent_pubkey, auth_signed_bytes(nonce, hub_spki_sha256, agent_pubkey), sig);
}

Result<crypto::Sha256> pin_to_sha256(std::string_view pin) {
  constexpr std::string_view kPrefix = "sha256/";
  if (pin.substr(0, kPrefix.size()) != kPrefix) {
    return error(Errc::parse, "pin \"" + std::string(pin.substr(0, 80)) +
                                  "\" must start with \"sha256/\"");
  }
  Result<std::string> raw = crypto::base64_decode(pin.substr(kPrefix.size()));
  if (!raw.ok()) {
    return error(Errc::parse, "pin \"" + std::string(pin.substr(0, 80)) + "\": " +
                                  raw.status().message());
  }
  if (raw->size() != 32) {
    return error(Errc::parse, "pin \"" + std::string(pin.substr(0, 80)) +
                                  "\" must hold the base64 of 32 bytes, got " +
                                  std::to_string(raw->size()));
  }
  crypto::Sha256 out{};
  std::memcpy(out.data(), raw->data(), out.size());
  return out;
}

}  // namespace tg::tunnel
