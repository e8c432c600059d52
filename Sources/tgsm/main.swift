import TestDC
import TelegramClient
