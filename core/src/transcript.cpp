// Transcript: exactly-once, in-order assembly of streamed replies and the session history.
#include "confab/transcript.hpp"

namespace confab::transcript {

namespace {

// std::to_string(uint64_t) would add its own formatter to the SDK's wasm (~0.3 KB); this is enough.
std::string decimal(std::uint64_t v) {
    char buf[20];
    char* p = buf + sizeof buf;
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return std::string(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

// "event 7 (delta): <what>", so a bad stream can be traced to the event that broke it.
Error invalid(const Event& ev, std::string_view what) {
    std::string m = "event " + decimal(ev.seq);
    if (!ev.type.empty()) {
        m += " (";
        m += ev.type;
        m += ')';
    }
    m += ": ";
    m += what;
    return make_error("invalid_event", std::move(m));
}

}  // namespace

const char* to_string(ReplyStatus s) noexcept {
    switch (s) {
        case ReplyStatus::streaming: return "streaming";
        case ReplyStatus::success: return "success";
        case ReplyStatus::error: return "error";
        case ReplyStatus::cancelled: return "cancelled";
    }
    return "streaming";
}

const char* to_string(Role r) noexcept {
    switch (r) {
        case Role::user: return "user";
        case Role::assistant: return "assistant";
        case Role::system: return "system";
    }
    return "user";
}

Status Reply::continue_after(std::uint64_t seq, std::string text) {
    if (last_seq_ != 0) {
        return make_error("invalid_event", "a reply can only be continued before any event is applied (it is at event " +
                                               decimal(last_seq_) + ")");
    }
    last_seq_ = seq;
    text_ = std::move(text);
    return Ok{};
}

Result<Apply> Reply::apply(const Event& ev) {
    if (ev.seq == 0) return invalid(ev, "sequence numbers start at 1");
    if (ev.seq <= last_seq_) return Apply::duplicate;
    // Checked before the gap: nothing may follow the terminal event, however far ahead.
    if (done()) return invalid(ev, "after the completed event " + decimal(last_seq_));
    if (ev.seq != last_seq_ + 1) return Apply::gap;

    // Validate fully before changing anything, so an invalid event leaves the reply as it was.
    const std::string_view type = ev.type;
    if (type == "delta" || type == "agent-response") {
        const auto& piece = type == "delta" ? ev.content : ev.token;
        if (!piece) return invalid(ev, type == "delta" ? "no \"content\" string" : "no \"token\" string");
        // std::string grows geometrically: appending stays linear in the reply's size.
        text_.append(*piece);
    } else if (type == "agent-action") {
        if (!ev.tool) return invalid(ev, "no \"tool\" string");
        Action a;
        a.kind = ActionKind::call;
        a.seq = ev.seq;
        a.text_offset = text_.size();
        a.tool = *ev.tool;
        if (ev.tool_input) a.tool_input = *ev.tool_input;
        actions_.push_back(std::move(a));
    } else if (type == "agent-action-error") {
        if (!ev.error) return invalid(ev, "no \"error\" string");
        Action a;
        a.kind = ActionKind::error;
        a.seq = ev.seq;
        a.text_offset = text_.size();
        a.error = *ev.error;
        actions_.push_back(std::move(a));
    } else if (type == "error") {
        if (!ev.error) return invalid(ev, "no \"error\" string");
        error_ = std::string(*ev.error);
        error_code_.reset();
        if (ev.code) error_code_ = std::string(*ev.code);
    } else if (type == "completed") {
        if (Status s = complete(ev); !s) return s.error();
    }
    // Any other type: consumed, nothing to assemble.
    last_seq_ = ev.seq;
    return Apply::applied;
}

Status Reply::complete(const Event& ev) {
    ReplyStatus status;
    if (!ev.status) {
        // Chat "completed" may omit status; a run that reported an error did not succeed.
        status = error_ ? ReplyStatus::error : ReplyStatus::success;
    } else if (*ev.status == "success") {
        status = ReplyStatus::success;
    } else if (*ev.status == "error") {
        status = ReplyStatus::error;
    } else if (*ev.status == "cancelled") {
        status = ReplyStatus::cancelled;
    } else {
        return invalid(ev, "status \"" + std::string(*ev.status) + "\" is not success, error or cancelled");
    }
    status_ = status;
    if (ev.result) {
        final_ = std::string(*ev.result);
    } else if (ev.output) {
        final_ = std::string(*ev.output);
    }
    if (ev.error) error_ = std::string(*ev.error);
    if (ev.code) error_code_ = std::string(*ev.code);
    if (ev.session_id) session_id_ = *ev.session_id;
    return Ok{};
}

void Transcript::add_message(Role role, std::string content) {
    messages_.push_back(Message{role, std::move(content)});
}

void Transcript::begin_turn(std::string user_message) {
    messages_.push_back(Message{Role::user, std::move(user_message)});
    reply_ = Reply{};
}

Result<Apply> Transcript::apply(const Event& ev) {
    auto r = reply_.apply(ev);
    if (r && *r == Apply::applied && reply_.done()) {
        if (!reply_.session_id().empty()) session_id_ = reply_.session_id();
        // As the server stores it: a finished (or stopped) reply with text becomes a message.
        const ReplyStatus s = reply_.status();
        if ((s == ReplyStatus::success || s == ReplyStatus::cancelled) && !reply_.result().empty()) {
            messages_.push_back(Message{Role::assistant, reply_.result()});
        }
    }
    return r;
}

}  // namespace confab::transcript
