#include "rewards/http_reward_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "trainer/common/error.h"

namespace anchor::rewards {
namespace {

size_t append_body(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

HttpRewardClient::HttpRewardClient(std::string url, std::string label) : url_(std::move(url)), label_(std::move(label)) {
  init_curl_once();
  CURL* curl = curl_easy_init();
  AR_CHECK(curl != nullptr, label_, ": curl_easy_init failed");
  curl_ = curl;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers_ = headers;
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts: the trainer has threads
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  error_buffer_.assign(CURL_ERROR_SIZE, '\0');
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer_.data());
}

HttpRewardClient::~HttpRewardClient() {
  curl_slist_free_all(static_cast<curl_slist*>(headers_));
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpRewardClient::Response HttpRewardClient::post(const std::string& body, double timeout_seconds) {
  CURL* curl = static_cast<CURL*>(curl_);
  Response r;
  error_buffer_[0] = '\0';
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  const long timeout_ms = std::max(1L, static_cast<long>(timeout_seconds * 1000.0));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  const CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) {
    r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    r.why = error_buffer_[0] != '\0' ? std::string(error_buffer_.c_str()) : curl_easy_strerror(code);
    return r;
  }
  r.delivered = true;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r.new_connections);
  return r;
}

}  // namespace anchor::rewards
