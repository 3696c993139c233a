-- require "hfscan.hub": the Hub's HTTP API client (hfscan.hub.api), the name
-- scripts written before the folders by layer know it by.
return require "hfscan.hub.api"
