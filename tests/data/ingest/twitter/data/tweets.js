window.YTD.tweets.part0 = [
  {
    "tweet" : {
      "edit_info" : { "initial" : { "editTweetIds" : [ "1785600000000000001" ], "editableUntil" : "2024-05-01T11:00:00.000Z", "editsRemaining" : "5", "isEditEligible" : true } },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [ { "text" : "gardening", "indices" : [ "44", "54" ] } ],
        "symbols" : [ ],
        "user_mentions" : [ ],
        "urls" : [ { "url" : "https://t.co/AbCdEf1234", "expanded_url" : "https://example.org/tomatoes", "display_url" : "example.org/tomatoes", "indices" : [ "55", "78" ] } ]
      },
      "display_text_range" : [ "0", "78" ],
      "favorite_count" : "3",
      "id_str" : "1785600000000000001",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1785600000000000001",
      "created_at" : "Wed May 01 10:00:00 +0000 2024",
      "favorited" : false,
      "full_text" : "My tomatoes finally sprouted on the balcony #gardening https://t.co/AbCdEf1234",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "retweeted" : false,
      "source" : "Twitter Web App",
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ { "name" : "Grace", "screen_name" : "grace_h", "indices" : [ "0", "8" ], "id_str" : "42", "id" : "42" } ], "urls" : [ ] },
      "display_text_range" : [ "9", "40" ],
      "favorite_count" : "1",
      "in_reply_to_status_id_str" : "1785500000000000000",
      "id_str" : "1785600000000000002",
      "in_reply_to_user_id" : "42",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1785600000000000002",
      "in_reply_to_status_id" : "1785500000000000000",
      "created_at" : "Thu May 02 18:30:00 +0000 2024",
      "favorited" : false,
      "full_text" : "@grace_h I use a cheap soil thermometer.",
      "lang" : "en",
      "in_reply_to_screen_name" : "grace_h",
      "in_reply_to_user_id_str" : "42"
    }
  },
  {
    "tweet" : {
      "retweeted" : false,
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ { "screen_name" : "nasa" } ], "urls" : [ ],
        "media" : [ { "url" : "https://t.co/Media12345", "media_url_https" : "https://pbs.twimg.com/media/abc.jpg", "type" : "photo" } ] },
      "extended_entities" : { "media" : [ { "url" : "https://t.co/Media12345", "media_url_https" : "https://pbs.twimg.com/media/abc.jpg", "type" : "photo" } ] },
      "id_str" : "1785600000000000003",
      "created_at" : "Fri May 03 07:15:00 +0000 2024",
      "full_text" : "RT @nasa: The Moon tonight https://t.co/Media12345",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "id_str" : "1785600000000000004",
      "created_at" : "not a date",
      "full_text" : "A tweet with a broken date"
    }
  }
]
