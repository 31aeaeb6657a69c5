window.YTD.account.part0 = [
  {
    "account" : {
      "email" : "ada@example.org",
      "createdVia" : "web",
      "username" : "ada_l",
      "accountId" : "1234567890",
      "createdAt" : "2010-03-01T10:00:00.000Z",
      "accountDisplayName" : "Ada L."
    }
  }
]
