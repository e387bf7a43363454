# frozen_string_literal: true

require "openssl"
require "securerandom"

module TinyPG
  # SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL does it: no channel binding, the user name
  # taken from the startup message (sent empty here), the password as given (no SASLprep, which
  # changes nothing for ASCII passwords).
  class Scram
    def initialize(password)
      @password = password
      @nonce = SecureRandom.base64(18)
      @first_bare = "n=,r=#{@nonce}"
    end

    def client_first = "n,,#{@first_bare}"

    # server-first "r=NONCE,s=SALT,i=ITERATIONS" -> client-final "c=biws,r=NONCE,p=PROOF"
    def client_final(server_first)
      attrs = parse(server_first)
      raise Error, "SCRAM: the server's nonce does not extend ours" unless attrs["r"].to_s.start_with?(@nonce)

      salted = OpenSSL::KDF.pbkdf2_hmac(@password, salt: attrs["s"].unpack1("m"),
                                                   iterations: Integer(attrs["i"]),
                                                   length: 32, hash: "SHA256")
      client_key = hmac(salted, "Client Key")
      without_proof = "c=biws,r=#{attrs["r"]}" # biws: base64 of the GS2 header "n,,"
      @auth_message = "#{@first_bare},#{server_first},#{without_proof}"
      signature = hmac(OpenSSL::Digest::SHA256.digest(client_key), @auth_message)
      proof = client_key.bytes.zip(signature.bytes).map { |a, b| a ^ b }.pack("C*")
      @server_signature = hmac(hmac(salted, "Server Key"), @auth_message)
      "#{without_proof},p=#{[proof].pack("m0")}"
    end

    # server-final "v=SIGNATURE": proves the server knows the password too.
    def verify_server_final(server_final)
      attrs = parse(server_final)
      raise Error, "SCRAM: #{attrs["e"]}" if attrs["e"]
      return if attrs["v"] == [@server_signature].pack("m0")

      raise Error, "SCRAM: the server's signature does not match"
    end

    private

    def parse(message) = message.split(",").to_h { |pair| pair.split("=", 2) }

    def hmac(key, data) = OpenSSL::HMAC.digest("SHA256", key, data)
  end
end
