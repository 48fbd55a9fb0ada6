// Publishing audit events over HTTP from Go (standard library only).
//
//	AUDITLOG_URL=http://127.0.0.1:8080 AUDITLOG_TOKEN=alt_... go run main.go
//
// Each event carries its own event_id and time, so sending the same batch again after a timeout or a
// 429/503 never stores an event twice: the consumer keeps one row per event_id. Prints the
// per-line result as JSON on stdout; exits 1 unless every event was accepted.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
)

type accepted struct {
	Line    int    `json:"line"`
	EventID string `json:"event_id"`
}

type rejected struct {
	Line    int     `json:"line"`
	Field   *string `json:"field"`
	Code    string  `json:"code"`
	Message string  `json:"message"`
}

type result struct {
	Accepted []accepted       `json:"accepted"`
	Rejected []rejected       `json:"rejected"`
	Failed   []map[string]any `json:"failed"`
	Error    *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// uuidV7 is a time-ordered UUID (version 7), the id the API requires when a client sets one.
func uuidV7() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	ms := uint64(time.Now().UnixMilli())
	for i := 0; i < 6; i++ {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	url := env("AUDITLOG_URL", "http://127.0.0.1:8080")
	token := os.Getenv("AUDITLOG_TOKEN")
	workspace := env("AUDITLOG_WORKSPACE", "demo")
	if token == "" {
		fmt.Fprintln(os.Stderr, "set AUDITLOG_TOKEN to an ingest token (auditlog token create WS --ingest)")
		os.Exit(2)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body) // one JSON document per line: NDJSON
	const n = 2
	for i := 1; i <= n; i++ {
		err := enc.Encode(map[string]any{
			"event_id":     uuidV7(),
			"time":         time.Now().UTC().Format(time.RFC3339Nano),
			"workspace_id": workspace,
			"event":        "key.create",
			"actor":        map[string]string{"type": "user", "id": "user_go"},
			"targets":      []map[string]string{{"type": "key", "id": fmt.Sprintf("key_go_%d", i)}},
			"description":  fmt.Sprintf("created key %d from Go", i),
		})
		if err != nil {
			panic(err)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	var status int
	var res result
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest("POST", url+"/v1/ingest", bytes.NewReader(body.Bytes()))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := client.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		status = resp.StatusCode
		res = result{}
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "answer is not JSON:", err)
			os.Exit(1)
		}
		// 429 (buffer full) and 503 (broker not acknowledging): wait Retry-After seconds and
		// send the same lines again (same event_ids, so nothing is duplicated).
		if (status == 429 || status == 503) && attempt < 5 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(wait+1) * time.Second)
			continue
		}
		break
	}
	for _, r := range res.Rejected {
		fmt.Fprintf(os.Stderr, "line %d: %s (%s)\n", r.Line, r.Message, r.Code)
	}
	out, _ := json.Marshal(map[string]any{"status": status, "accepted": res.Accepted, "rejected": res.Rejected, "failed": res.Failed})
	fmt.Println(string(out))
	if status != 200 || len(res.Accepted) != n {
		os.Exit(1)
	}
}
