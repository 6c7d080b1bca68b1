// Tunnel authentication: the exact bytes an agent signs to answer a hub's
// challenge (domain label, nonce, the hub's SPKI hash as the agent saw it in
// TLS, the agent's public key), signing and verifying them, and turning a
// "sha256/<base64>" pin into the 32 raw bytes. Pure functions; no I/O, no state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/crypto/hash.h"
#include "shared/tunnel/messages.h"

namespace tg::tunnel {

// "tokengo/tunnel-auth/v1" (22 bytes), followed by one 0x00 byte.
constexpr std::string_view kAuthDomain = "tokengo/tunnel-auth/v1";
constexpr size_t kAuthSignedSize = 22 + 1 + 32 + 32 + 32;  // 119

// domain || 0x00 || nonce || hub_spki_sha256 || agent_pubkey, 119 bytes.
std::string auth_signed_bytes(const Nonce& nonce, const crypto::Sha256& hub_spki_sha256,
                              const crypto::PublicKey& agent_pubkey);
// The agent's signature over auth_signed_bytes(nonce, hub_spki_sha256, its key).
crypto::Signature sign_auth(const crypto::KeyPair& agent, const Nonce& nonce,
                            const crypto::Sha256& hub_spki_sha256);
// The hub's check, with ITS OWN SPKI hash: a signature made for another key
// (relayed by a man in the middle) fails.
bool verify_auth(const crypto::PublicKey& agent_pubkey, const crypto::Signature& sig,
                 const Nonce& nonce, const crypto::Sha256& hub_spki_sha256);
// "sha256/<base64 of 32 bytes>" -> the 32 bytes. Errc::parse names what is
// wrong with the pin.
Result<crypto::Sha256> pin_to_sha256(std::string_view pin);

}  // namespace tg::tunnel
