#include "trainer/checkpoint/tensorboard_events.h"

#include <boost/crc.hpp>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string_view>
#include <vector>

#include "tensorboard_event.pb-c.h"
#include "trainer/common/error.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The serialised bytes of an event.
std::string serialize(const AnchorTb__Event& event) {
  std::string bytes(anchor_tb__event__get_packed_size(&event), '\0');
  anchor_tb__event__pack(&event, reinterpret_cast<uint8_t*>(bytes.data()));
  return bytes;
}

// The serialised bytes of an event that carries `summary` at `step`.
std::string summary_event(int64_t step, AnchorTb__Summary* summary) {
  AnchorTb__Event event = ANCHOR_TB__EVENT__INIT;
  event.wall_time = now_seconds();
  event.step = step;
  event.what_case = ANCHOR_TB__EVENT__WHAT_SUMMARY;
  event.summary = summary;
  return serialize(event);
}

ProtobufCBinaryData binary(const std::string& s) {
  return ProtobufCBinaryData{s.size(), reinterpret_cast<uint8_t*>(const_cast<char*>(s.data()))};
}

void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::pair<std::string, double>>& out) {
  for (const auto& [key, value] : j.items()) {
    const std::string tag = prefix.empty() ? key : prefix + "/" + key;
    if (value.is_object()) {
      flatten(value, tag, out);
    } else if (value.is_number() && tag != "step") {
      out.emplace_back(tag, value.get<double>());
    }
  }
}

}  // namespace

uint32_t tfrecord_masked_crc(const void* data, size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;  // CRC32C (Castagnoli)
  crc.process_bytes(data, size);
  const uint32_t c = crc.checksum();
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  AR_CHECK(!ec, dir, ": cannot create the TensorBoard directory (", ec.message(), ")");
  // TensorBoard reads a directory's event files in name order: this one must sort last.
  int64_t stamp = static_cast<int64_t>(now_seconds());
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const std::string_view prefix = "events.out.tfevents.";
    if (name.rfind(prefix, 0) != 0) continue;
    const int64_t earlier = std::strtoll(name.c_str() + prefix.size(), nullptr, 10);
    stamp = std::max(stamp, earlier + 1);
  }
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  path_ = (fs::path(dir) / ("events.out.tfevents." + std::to_string(stamp) + "." + host)).string();
  out_.open(path_, std::ios::binary | std::ios::app);
  AR_CHECK(out_.good(), path_, ": cannot open the TensorBoard event file for writing");
  AnchorTb__Event event = ANCHOR_TB__EVENT__INIT;
  event.wall_time = now_seconds();
  event.what_case = ANCHOR_TB__EVENT__WHAT_FILE_VERSION;
  event.file_version = const_cast<char*>("brain.Event:2");
  write_record(serialize(event));
}

void TensorBoardWriter::add_scalars(int64_t step, const nlohmann::json& line) {
  std::vector<std::pair<std::string, double>> scalars;
  flatten(line, "", scalars);
  if (scalars.empty()) return;
  std::vector<AnchorTb__Summary__Value> values(scalars.size());
  std::vector<AnchorTb__Summary__Value*> pointers;
  for (size_t i = 0; i < scalars.size(); ++i) {
    anchor_tb__summary__value__init(&values[i]);
    values[i].tag = const_cast<char*>(scalars[i].first.c_str());
    values[i].value_case = ANCHOR_TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    values[i].simple_value = static_cast<float>(scalars[i].second);
    pointers.push_back(&values[i]);
  }
  AnchorTb__Summary summary = ANCHOR_TB__SUMMARY__INIT;
  summary.n_value = pointers.size();
  summary.value = pointers.data();
  write_record(summary_event(step, &summary));
}

void TensorBoardWriter::add_text(int64_t step, const std::string& tag, const std::string& markdown) {
  AnchorTb__SummaryMetadata__PluginData plugin = ANCHOR_TB__SUMMARY_METADATA__PLUGIN_DATA__INIT;
  plugin.plugin_name = const_cast<char*>("text");
  AnchorTb__SummaryMetadata metadata = ANCHOR_TB__SUMMARY_METADATA__INIT;
  metadata.plugin_data = &plugin;
  AnchorTb__TensorShapeProto shape = ANCHOR_TB__TENSOR_SHAPE_PROTO__INIT;
  ProtobufCBinaryData text = binary(markdown);
  AnchorTb__TensorProto tensor = ANCHOR_TB__TENSOR_PROTO__INIT;
  tensor.dtype = 7;  // DT_STRING
  tensor.tensor_shape = &shape;
  tensor.n_string_val = 1;
  tensor.string_val = &text;
  AnchorTb__Summary__Value value = ANCHOR_TB__SUMMARY__VALUE__INIT;
  value.tag = const_cast<char*>(tag.c_str());
  value.metadata = &metadata;
  value.value_case = ANCHOR_TB__SUMMARY__VALUE__VALUE_TENSOR;
  value.tensor = &tensor;
  AnchorTb__Summary__Value* values[] = {&value};
  AnchorTb__Summary summary = ANCHOR_TB__SUMMARY__INIT;
  summary.n_value = 1;
  summary.value = values;
  write_record(summary_event(step, &summary));
}

void TensorBoardWriter::add_session_start(int64_t step) {
  AnchorTb__SessionLog log = ANCHOR_TB__SESSION_LOG__INIT;
  log.status = ANCHOR_TB__SESSION_LOG__SESSION_STATUS__START;
  AnchorTb__Event event = ANCHOR_TB__EVENT__INIT;
  event.wall_time = now_seconds();
  event.step = step;
  event.what_case = ANCHOR_TB__EVENT__WHAT_SESSION_LOG;
  event.session_log = &log;
  write_record(serialize(event));
}

void TensorBoardWriter::write_record(const std::string& data) {
  char header[12];
  const uint64_t length = data.size();
  for (int i = 0; i < 8; ++i) header[i] = static_cast<char>((length >> (8 * i)) & 0xff);  // little endian
  const uint32_t length_crc = tfrecord_masked_crc(header, 8);
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>((length_crc >> (8 * i)) & 0xff);
  const uint32_t data_crc = tfrecord_masked_crc(data.data(), data.size());
  char footer[4];
  for (int i = 0; i < 4; ++i) footer[i] = static_cast<char>((data_crc >> (8 * i)) & 0xff);
  out_.write(header, sizeof(header));
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  out_.write(footer, sizeof(footer));
  out_.flush();
  AR_CHECK(out_.good(), path_, ": writing a TensorBoard event failed (disk full?)");
}

}  // namespace anchor
