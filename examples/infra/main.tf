provider "aws" {
  region = "eu-west-2"
}

resource "aws_s3_bucket" "receipts" {
  bucket = "payments-receipts-demo"

  tags = {
    owner = "team-payments"
  }
}

resource "aws_security_group" "admin" {
  name        = "admin-ssh"
  description = "Administrative SSH access"

  ingress {
    description = "SSH from anywhere"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
