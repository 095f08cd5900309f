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

func mac(secret string, message string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(message))
	return hex.EncodeToString(h.Sum(nil))
}

// UserHash is the lowercase hex HMAC-SHA256 with the workspace secret as key and the user id as
// message (Go strings are bytes: pass UTF-8).
func UserHash(secret, userID string) (string, error) {
	if userID == "" {
		return "", errors.New("userID must not be empty (an empty user is anonymous)")
	}
	return mac(secret, userID), nil
}

// IdentityToken is "v1.<exp>.<hex HMAC-SHA256 over "v1\n"+workspace+"\n"+user+"\n"+exp>", same
// key. expiresAt is Unix seconds; the server refuses the token from that second on.
func IdentityToken(secret, workspaceID, userID string, expiresAt int64) (string, error) {
	if userID == "" {
		return "", errors.New("userID must not be empty (an empty user is anonymous)")
	}
	// The fields are joined with "\n", so an id holding one could be re-split: the server refuses it.
	if strings.Contains(workspaceID, "\n") || strings.Contains(userID, "\n") {
		return "", errors.New("ids must not contain a newline")
	}
	if expiresAt < 0 {
		return "", errors.New("expiresAt must be Unix seconds")
	}
	exp := strconv.FormatInt(expiresAt, 10)
	return "v1." + exp + "." + mac(secret, "v1\n"+workspaceID+"\n"+userID+"\n"+exp), nil
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
