# Circle's real-time system (../shared/seeds/circle-websockets.md) on the real Rails
# Action Cable 6.1 (Debian's ruby-actioncable, as ../shared/refserver), for
# cable-client's end-to-end tests: the same rules as cable-server's --app circle.
#
#   CIRCLE_SECRET=s CIRCLE_ORIGIN=https://community.example CIRCLE_ROOMS='{"7":[42,43]}' \
#     puma -e production -b tcp://127.0.0.1:PORT -t 5:5 circle.ru
#
# - Connection: `Authorization: Bearer <JWT>` (or ?token=), HS256 with CIRCLE_SECRET,
#   `sub` = community_member_id, `exp` in the future; anything else is rejected.
# - The welcome carries a `sid`, as Circle's server sends it.
# - ChatRoomChannel, NotificationChannel, Chats::CommunityMemberThreadsChannel
#   (community_member_id) for the token's own member; Chats::RoomChannel (chat_room_id)
#   for the room's participants (CIRCLE_ROOMS); anything else rejected.
# - GET /publish?stream=S&body=JSON broadcasts the JSON to stream S.
require "json"
require "openssl"
require "base64"
require "securerandom"
require "logger"
require "action_cable"
require "active_support/tagged_logging"
require "active_support/logger"

SECRET = ENV.fetch("CIRCLE_SECRET")
ROOMS = JSON.parse(ENV.fetch("CIRCLE_ROOMS", "{}"))

module CircleToken
  def self.member_id(token)
    header, payload, signature = token.to_s.split(".")
    return nil unless header && payload && signature
    expected = Base64.urlsafe_encode64(
      OpenSSL::HMAC.digest("SHA256", SECRET, "#{header}.#{payload}"), padding: false
    )
    return nil unless Rack::Utils.secure_compare(expected, signature)
    return nil unless JSON.parse(Base64.urlsafe_decode64(header))["alg"] == "HS256"
    claims = JSON.parse(Base64.urlsafe_decode64(payload))
    return nil unless claims["exp"].is_a?(Integer) && claims["exp"] > Time.now.to_i
    Integer(claims["sub"], exception: false)
  rescue ArgumentError, JSON::ParserError
    nil
  end
end

module ApplicationCable
  class Connection < ActionCable::Connection::Base
    identified_by :community_member_id

    def connect
      token = request.params["token"].presence
      if token.nil? && (auth = request.authorization.presence)
        token = auth.sub(/\ABearer\s+/i, "")
      end
      self.community_member_id = CircleToken.member_id(token) || reject_unauthorized_connection
    end

    private

    def send_welcome_message
      transmit type: ActionCable::INTERNAL[:message_types][:welcome], sid: SecureRandom.alphanumeric(21)
    end
  end

  class Channel < ActionCable::Channel::Base
    private

    def own_member!(stream)
      if params[:community_member_id].to_s == community_member_id.to_s
        stream_from stream
      else
        reject
      end
    end
  end
end

class ChatRoomChannel < ApplicationCable::Channel
  def subscribed = own_member!("chat-room-channel-#{params[:community_member_id]}")
end

class NotificationChannel < ApplicationCable::Channel
  def subscribed = own_member!("notification-channel-#{params[:community_member_id]}")
end

module Chats
  class CommunityMemberThreadsChannel < ApplicationCable::Channel
    def subscribed = own_member!("chat-community-member-#{params[:community_member_id]}-threads-channel")
  end

  class RoomChannel < ApplicationCable::Channel
    def subscribed
      if ROOMS.fetch(params[:chat_room_id].to_s, []).include?(community_member_id)
        stream_from "chat-room-#{params[:chat_room_id]}-channel"
      else
        reject
      end
    end
  end
end

cfg = ActionCable.server.config
cfg.cable = { "adapter" => "async" }
cfg.logger = ActiveSupport::TaggedLogging.new(ActiveSupport::Logger.new(ENV.fetch("CABLE_LOG", File::NULL)))
cfg.connection_class = -> { ApplicationCable::Connection }
cfg.worker_pool_size = 4
cfg.mount_path = "/cable"
cfg.disable_request_forgery_protection = false
cfg.allow_same_origin_as_host = false
cfg.allowed_request_origins = [ENV.fetch("CIRCLE_ORIGIN")]

app = Rack::Builder.new do
  map "/cable" do
    run ActionCable.server
  end

  map "/publish" do
    run(lambda do |env|
      q = Rack::Utils.parse_query(env["QUERY_STRING"])
      ActionCable.server.broadcast(q["stream"], JSON.parse(q["body"]))
      [200, { "Content-Type" => "application/json" }, ['{"ok":true}']]
    end)
  end
end

run app
