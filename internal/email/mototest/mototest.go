// Package mototest reads the emails a moto_server has accepted, for tests
// and the local mailbox page.
//
// moto (5.2.1) keeps SES v1 and v2 mail in the "ses" backend, exposed by
// GET /moto-api/data.json as
//
//	{"ses": {
//	  "Message":    [{"id", "source", "subject", "body",
//	                  "destinations": {"ToAddresses": [..], "CcAddresses": [..], "BccAddresses": [..]}}],
//	  "RawMessage": [{"id", "source", "destinations": [..], "raw_data"}],
//	  ...}}
//
// For a simple message with both bodies, "body" holds only the HTML part.
package mototest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/jitaccess/jit/internal/awstest"
)

// Sent is one email moto accepted.
type Sent struct {
	ID      string
	From    string
	To      []string // To, Cc and Bcc addresses, in that order
	Subject string
	Body    string // the HTML part when both were sent; the whole MIME body for raw mail
}

type snapshot struct {
	SES struct {
		Message []struct {
			ID           string              `json:"id"`
			Source       string              `json:"source"`
			Subject      string              `json:"subject"`
			Body         string              `json:"body"`
			Destinations map[string][]string `json:"destinations"`
		} `json:"Message"`
		RawMessage []struct {
			ID           string   `json:"id"`
			Source       string   `json:"source"`
			Destinations []string `json:"destinations"`
			RawData      string   `json:"raw_data"`
		} `json:"RawMessage"`
	} `json:"ses"`
}

// httpClient is shared, so repeated reads reuse their connection.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// SentMessages returns the mail moto at motoURL has accepted: simple
// messages first, then raw ones, each in the order they were sent. It waits
// its turn with every other client of that server (awstest.SerialClient):
// reading moto's whole state while it writes can fail.
func SentMessages(motoURL string) ([]Sent, error) {
	client := awstest.SerialClient(motoURL, httpClient)
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(motoURL, "/")+"/moto-api/data.json", nil)
	if err != nil {
		return nil, fmt.Errorf("read moto data: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read moto data: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read moto data: %s", resp.Status)
	}
	var snap snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return nil, fmt.Errorf("decode moto data: %w", err)
	}

	var out []Sent
	for _, m := range snap.SES.Message {
		var to []string
		for _, k := range []string{"ToAddresses", "CcAddresses", "BccAddresses"} {
			to = append(to, m.Destinations[k]...)
		}
		out = append(out, Sent{ID: m.ID, From: m.Source, To: unique(to), Subject: m.Subject, Body: m.Body})
	}
	for _, m := range snap.SES.RawMessage {
		// moto lists a raw message's recipients from both the call and the
		// headers, so an address can appear twice.
		s := Sent{ID: m.ID, From: m.Source, To: unique(m.Destinations), Body: m.RawData}
		if msg, err := mail.ReadMessage(strings.NewReader(m.RawData)); err == nil {
			s.Subject = msg.Header.Get("Subject")
			if dec, err := new(mime.WordDecoder).DecodeHeader(s.Subject); err == nil {
				s.Subject = dec
			}
			if body, err := io.ReadAll(msg.Body); err == nil {
				s.Body = string(body)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func unique(addrs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range addrs {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
