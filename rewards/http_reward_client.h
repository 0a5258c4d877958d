// POSTs reward requests to a URL with libcurl: one handle per component, so the connection to
// the reward server is kept open between batches (HTTP/1.1 keep-alive); https:// works through
// libcurl's TLS (system CA certificates). Every request has a deadline (timeout_seconds).
#pragma once

#include <string>

namespace anchor::rewards {

class HttpRewardClient {
 public:
  // `label` starts every error ("reward.components[0] (url http://...)").
  HttpRewardClient(std::string url, std::string label);
  ~HttpRewardClient();
  HttpRewardClient(const HttpRewardClient&) = delete;
  HttpRewardClient& operator=(const HttpRewardClient&) = delete;

  struct Response {
    bool delivered = false;  // false: no HTTP answer at all (refused, reset, timed out)
    bool timed_out = false;
    long status = 0;
    std::string body;
    std::string why;         // when not delivered: libcurl's description
    long new_connections = 0;  // connections opened for this request (0: the kept-alive one was reused)
  };
  Response post(const std::string& body, double timeout_seconds);

 private:
  std::string url_, label_;
  void* curl_ = nullptr;     // CURL*, kept out of this header
  void* headers_ = nullptr;  // curl_slist*
  std::string error_buffer_;  // libcurl's detailed message of the last failure
};

}  // namespace anchor::rewards
