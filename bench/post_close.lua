-- wrk script: the baseline of callback deliveries (bench/api_features.py, A2). POSTs what Prefork's callback
-- client sends: its headers and a delivered job record (554 bytes, copied from a real delivery), with
-- `Connection: close`, so wrk opens a new TCP connection per request, as Prefork does per delivery.
wrk.method = "POST"
wrk.headers["User-Agent"] = "prefork/0.9.0"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Connection"] = "close"
wrk.headers["X-Prefork-Job-Id"] = "cbt1"
wrk.headers["X-Prefork-Delivery"] = "cbt1/1/1796144803517-1"
wrk.body = '{"id":"cbt1","state":"done","attempts":1,"max_retries":0,"last_error":null,"result":"ok",'
  .. '"result_truncated":false,"created_at":"2026-12-01T17:06:43.517Z","updated_at":"2026-12-01T17:06:43.517Z",'
  .. '"next_attempt_at":null,"priority":0,"timeout_ms":null,"progress":null,'
  .. '"callback_url":"http://127.0.0.1:47011/cb","callback":{"state":"pending","attempts":0,"last_error":null},'
  .. '"history":[{"attempt":1,"started_at":"2026-12-01T17:06:43.517Z","finished_at":"2026-12-01T17:06:43.517Z",'
  .. '"worker_pid":14948,"outcome":"ok","error":null,"stderr":null}],"payload":"@ok"}'
