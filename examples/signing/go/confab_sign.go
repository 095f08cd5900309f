// Confab identity signing for a Go backend: user hashes and expiring v1 tokens (standard library).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func mac(key []byte, message string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(message))
	return hex.EncodeToString(h.Sum(nil))
}

// CheckUserID: every signer refuses the same user ids, with the same words: an empty one
// (anonymous) and one with a control character (which keeps every user hash apart from the
// derived keys below).
func CheckUserID(userID string) error {
	if userID == "" {
		return errors.New("user id must not be empty (an empty user is anonymous)")
	}
	for _, r := range userID {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return errors.New("user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)")
		}
	}
	return nil
}

// tokenKey is the key of v1 tokens: HMAC-SHA256(secret, "confab-key\x00identity-token-v1"), the raw
// 32 bytes. Never the secret itself: a user hash is HMAC(secret, userID), so a token MACed with
// the secret would be the user hash of some crafted id.
func tokenKey(secret string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("confab-key\x00identity-token-v1"))
	return h.Sum(nil)
}

// UserHash is the lowercase hex HMAC-SHA256 with the workspace secret as key and the user id as
// message (Go strings are bytes: pass UTF-8).
func UserHash(secret, userID string) (string, error) {
	if err := CheckUserID(userID); err != nil {
		return "", err
	}
	return mac([]byte(secret), userID), nil
}

// IdentityToken is "v1.<exp>.<hex HMAC-SHA256 over "v1\n"+workspace+"\n"+user+"\n"+exp>", keyed
// with tokenKey(secret). expiresAt is Unix seconds; the server refuses the token from that second on.
func IdentityToken(secret, workspaceID, userID string, expiresAt int64) (string, error) {
	if err := CheckUserID(userID); err != nil {
		return "", err
	}
	// The fields are joined with "\n", so an id holding one could be re-split: the server refuses it.
	if strings.Contains(workspaceID, "\n") || strings.Contains(userID, "\n") {
		return "", errors.New("ids must not contain a newline")
	}
	if expiresAt < 0 {
		return "", errors.New("expiresAt must be Unix seconds")
	}
	exp := strconv.FormatInt(expiresAt, 10)
	return "v1." + exp + "." + mac(tokenKey(secret), "v1\n"+workspaceID+"\n"+userID+"\n"+exp), nil
}

// IdentityResponse is what your identity endpoint (the widget's data-identity-url) answers; encode
// it with encoding/json.
type IdentityResponse struct {
	UserID       string `json:"userId"`
	WorkspaceID  string `json:"workspaceId"`
	HashedUserID string `json:"hashedUserId"`
	ExpiresAt    int64  `json:"expiresAt"`
}

func NewIdentityResponse(secret, workspaceID, userID string, ttl time.Duration) (IdentityResponse, error) {
	exp := time.Now().Add(ttl).Unix()
	token, err := IdentityToken(secret, workspaceID, userID, exp)
	return IdentityResponse{userID, workspaceID, token, exp}, err
}

// CLI: CONFAB_SECRET=... go run confab_sign.go hash <userId> | token <workspaceId> <userId> <expiresAt>
func main() {
	secret := os.Getenv("CONFAB_SECRET")
	args := os.Args[1:]
	var out string
	var err error
	switch {
	case secret == "":
		err = errors.New("set CONFAB_SECRET to the workspace secret")
	case len(args) == 2 && args[0] == "hash":
		out, err = UserHash(secret, args[1])
	case len(args) == 4 && args[0] == "token":
		var exp int64
		if exp, err = strconv.ParseInt(args[3], 10, 64); err == nil {
			out, err = IdentityToken(secret, args[1], args[2], exp)
		}
	default:
		err = errors.New("usage: confab_sign hash <userId> | token <workspaceId> <userId> <expiresAt>")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "confab_sign:", err)
		os.Exit(2)
	}
	fmt.Println(out)
}
